// A log view that stays fast with 50,000 lines: a windowed list (window.js). It follows the end
// while the reader is at the end, and filters by a search string, marking the matches.
import { h } from "./dom.js";
import { RowWindow } from "./window.js";

const ROW = 18; // px, the CSS line height of .log-row

export class LogView {
  constructor() {
    this.lines = []; // {attempt, seq, stream, line, time}
    this.shown = null; // indexes of the lines matching the search, or null for all
    this.needle = "";
    this.el = h("div", { class: "log mono", "data-testid": "task-log", role: "log", tabindex: 0, "aria-label": "task log" });
    this.win = new RowWindow(this.el, this.el, ROW, (i) => this.drawLine(i), { onDraw: () => this.updateCount() });
    this.empty = h("p", { class: "muted log-empty" }, "No output yet.");
    this.count = h("span", { class: "muted", role: "status" });
    this.win.follow = true;
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
    const atEnd = this.win.atEnd();
    const from = this.lines.length;
    this.lines.push(...lines);
    if (this.shown) for (let i = from; i < this.lines.length; i++) if (this.matches(this.lines[i])) this.shown.push(i);
    this.win.follow = atEnd || this.win.follow && from === 0;
    this.win.setTotal(this.total());
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
    this.win.follow = !this.needle;
    this.win.setTotal(this.total());
  }

  updateCount() {
    const n = this.lines.length;
    const stderr = this.lines.reduce((a, l) => a + (l.stream === "stderr" ? 1 : 0), 0);
    this.count.textContent = this.shown
      ? `${this.shown.length} of ${n} lines match`
      : `${n} line${n === 1 ? "" : "s"}${stderr ? `, ${stderr} on stderr` : ""}`;
    this.empty.hidden = n > 0;
  }

  total() { return this.shown ? this.shown.length : this.lines.length; }

  drawLine(i) {
    const l = this.line(i);
    const prev = i > 0 ? this.line(i - 1).attempt : l.attempt;
    const stderr = l.stream === "stderr";
    return h("div", {
      class: "log-row" + (stderr ? " stderr" : "") + (l.attempt !== prev ? " new-attempt" : ""),
      "data-testid": "log-line", "data-stream": stderr ? "stderr" : null, "data-attempt": l.attempt,
      title: l.time ? new Date(l.time).toISOString() : null,
    },
    h("span", { class: "log-no", "aria-hidden": "true" }, `#${l.attempt}:${l.seq}`),
    h("span", { class: "log-mark", "aria-label": stderr ? "stderr" : null }, stderr ? "!" : " "),
    this.text(l.line));
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
