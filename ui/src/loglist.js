// A log view that stays fast with 50,000 lines: a hand-written windowing list (only the rows in
// view, plus a margin, are in the DOM; each row has the same height). It follows the end while
// the reader is at the end, and filters by a search string, marking the matches.
import { h } from "./dom.js";

const ROW = 18; // px, the CSS line height of .log-row
const MARGIN = 30; // rows drawn above and below the view

export class LogView {
  constructor() {
    this.lines = []; // {attempt, seq, stream, line, time}
    this.shown = null; // indexes of the lines matching the search, or null for all
    this.needle = "";
    this.spacer = h("div", { class: "log-spacer" });
    this.rows = h("div", { class: "log-rows" });
    this.el = h("div", {
      class: "log mono", "data-testid": "task-log", role: "log", tabindex: 0, "aria-label": "task log",
      onscroll: () => this.schedule(),
    }, this.spacer, this.rows);
    this.empty = h("p", { class: "muted log-empty" }, "No output yet.");
    this.count = h("span", { class: "muted", role: "status" });
    this.follow = true;
    this.pending = false;
    this.search = h("input", {
      type: "search", placeholder: "Search the log", "aria-label": "search the log", "data-testid": "log-search",
      oninput: (e) => this.setFilter(e.target.value),
    });
    this.root = h("div", { class: "logbox" }, h("div", { class: "log-tools" }, this.search, this.count), this.el, this.empty);
    this.updateCount();
  }

  /** append adds lines at the end (in order) and keeps following the end if the reader was there. */
  append(lines) {
    if (!lines.length) return;
    const atEnd = this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - ROW * 2;
    const from = this.lines.length;
    this.lines.push(...lines);
    if (this.shown) for (let i = from; i < this.lines.length; i++) if (this.matches(this.lines[i])) this.shown.push(i);
    this.follow = atEnd || this.follow && from === 0;
    this.schedule();
  }

  matches(l) { return l.line.toLowerCase().includes(this.needle); }

  setFilter(text) {
    this.needle = text.trim().toLowerCase();
    this.shown = null;
    if (this.needle) {
      this.shown = [];
      for (let i = 0; i < this.lines.length; i++) if (this.matches(this.lines[i])) this.shown.push(i);
    }
    this.el.scrollTop = 0;
    this.follow = !this.needle;
    this.schedule();
  }

  updateCount() {
    const n = this.lines.length;
    const stderr = this.lines.reduce((a, l) => a + (l.stream === "stderr" ? 1 : 0), 0);
    this.count.textContent = this.shown
      ? `${this.shown.length} of ${n} lines match`
      : `${n} line${n === 1 ? "" : "s"}${stderr ? `, ${stderr} on stderr` : ""}`;
    this.empty.hidden = n > 0;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const total = this.shown ? this.shown.length : this.lines.length;
    this.spacer.style.height = `${total * ROW}px`;
    if (this.follow) this.el.scrollTop = this.el.scrollHeight;
    const top = this.el.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - MARGIN);
    const last = Math.min(total, Math.ceil((top + (this.el.clientHeight || 400)) / ROW) + MARGIN);
    this.rows.style.transform = `translateY(${first * ROW}px)`;
    const rows = [];
    let prevAttempt = first > 0 ? this.line(first - 1).attempt : null;
    for (let i = first; i < last; i++) {
      const l = this.line(i);
      const newAttempt = prevAttempt != null && l.attempt !== prevAttempt;
      prevAttempt = l.attempt;
      rows.push(h("div", {
        class: "log-row" + (l.stream === "stderr" ? " stderr" : "") + (newAttempt ? " new-attempt" : ""),
        "data-testid": "log-line", "data-stream": l.stream === "stderr" ? "stderr" : null, "data-attempt": l.attempt,
        title: l.time ? new Date(l.time).toISOString() : null,
      },
      h("span", { class: "log-no", "aria-hidden": "true" }, `#${l.attempt}:${l.seq}`),
      h("span", { class: "log-mark", "aria-label": l.stream === "stderr" ? "stderr" : null }, l.stream === "stderr" ? "!" : " "),
      this.text(l.line)));
    }
    this.rows.replaceChildren(...rows);
    this.updateCount();
  }

  line(i) { return this.lines[this.shown ? this.shown[i] : i]; }

  text(line) {
    if (!this.needle) return h("span", { class: "log-text" }, line);
    const out = h("span", { class: "log-text" });
    const low = line.toLowerCase();
    let at = 0;
    for (let i = low.indexOf(this.needle); i >= 0; i = low.indexOf(this.needle, at)) {
      out.append(line.slice(at, i), h("mark", {}, line.slice(i, i + this.needle.length)));
      at = i + this.needle.length;
    }
    out.append(line.slice(at));
    return out;
  }
}
