// Live data comes only from the API's Server-Sent Events streams: never a timer that fetches.
// A stream remembers the id of the last event it got; EventSource sends it back as Last-Event-ID
// when it reconnects by itself, and a stream reopened after the tab was hidden asks for it with
// ?last_event_id= (the API's twin of the header), so nothing is missed or repeated. A hidden tab
// holds no connection at all; a finite stream's "end" event closes it for good.
import { token } from "./api.js";

const streams = new Set();
const listeners = new Set();

/** onLiveChange calls fn(state) whenever the page's connection state may have changed. */
export function onLiveChange(fn) { listeners.add(fn); fn(state()); }

/** state is "open" when every wanted stream is connected, "closed" when none is or none is wanted. */
export function state() {
  let open = 0, wanted = 0, fresh = 0;
  for (const st of streams) {
    if (st.ended) continue;
    wanted++;
    if (st.es && st.es.readyState === EventSource.OPEN) { open++; st.opened = true; }
    else if (!st.opened) fresh++;
  }
  if (wanted === 0) return "idle";
  if (open === wanted) return "open";
  return fresh ? "connecting" : "closed";
}

function changed() { const s = state(); for (const fn of listeners) fn(s); }

export class Stream {
  /**
   * @param {string} path the stream's path with its query (no last_event_id)
   * @param {string[]} names the event types to listen for ("end" is always handled)
   * @param {(name: string, data: any, id: string) => void} onEvent
   */
  constructor(path, names, onEvent, { onEnd } = {}) {
    this.path = path;
    this.names = names;
    this.onEvent = onEvent;
    this.onEnd = onEnd;
    this.lastId = "";
    this.ended = false;
    this.es = null;
    streams.add(this);
    if (document.visibilityState !== "hidden") this.open();
    changed();
  }

  url() {
    const sep = this.path.includes("?") ? "&" : "?";
    const q = new URLSearchParams();
    if (this.lastId) q.set("last_event_id", this.lastId);
    const t = token();
    if (t) q.set("access_token", t); // EventSource cannot send the Authorization header
    const s = q.toString();
    return s ? this.path + sep + s : this.path;
  }

  open() {
    if (this.es || this.ended) return;
    const es = new EventSource(this.url());
    this.es = es;
    const handle = (name) => (e) => {
      if (e.lastEventId) this.lastId = e.lastEventId;
      let data = null;
      try { data = JSON.parse(e.data); } catch { return; }
      this.onEvent(name, data, e.lastEventId);
    };
    for (const n of this.names) es.addEventListener(n, handle(n));
    es.addEventListener("end", () => { this.close(true); this.onEnd?.(); });
    es.onopen = changed;
    es.onerror = () => {
      // CLOSED: the server refused the stream (401, 404, 429, ...): EventSource gives up. Left
      // closed until the tab is shown again or the page reloads. CONNECTING: it retries itself.
      if (es.readyState === EventSource.CLOSED) this.suspend();
      changed();
    };
  }

  /** suspend drops the connection but keeps the position, to reopen later. */
  suspend() {
    if (this.es) { this.es.close(); this.es = null; }
    changed();
  }

  /** close ends the stream for good (ended: the server said there is nothing more). */
  close(ended = true) {
    this.ended = ended;
    this.suspend();
    streams.delete(this);
    changed();
  }
}

/** closeAll ends every stream: the page they belong to is gone. */
export function closeAll() { for (const st of [...streams]) st.close(); }

document.addEventListener("visibilitychange", () => {
  for (const st of streams) document.visibilityState === "hidden" ? st.suspend() : st.open();
  changed();
});
