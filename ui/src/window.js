// A windowed list: of many rows of one height, only those in view (and a margin above and below)
// are in the DOM, so 50,000 log lines, or a run's 1,000 tasks in its timeline and its table, cost
// what a screenful does. Two spacers, above and below the rows drawn, give the list its whole
// height; as they are in the flow, the rows can be a table's (a spacer is then a <tr>).
import { h } from "./dom.js";

export class RowWindow {
  /**
   * @param {HTMLElement} box the scrolling element
   * @param {HTMLElement} list where the rows go: box itself, or an element in it (a <tbody>)
   * @param {number} rowHeight px, the CSS height of each row
   * @param {(i: number) => Node} row draws row i
   * @param {{margin?: number, spacer?: () => HTMLElement, onDraw?: () => void}} [o]
   */
  constructor(box, list, rowHeight, row, { margin = 30, spacer = () => h("div", { class: "win-spacer" }), onDraw } = {}) {
    this.box = box;
    this.list = list;
    this.rowHeight = rowHeight;
    this.row = row;
    this.margin = margin;
    this.onDraw = onDraw;
    this.total = 0;
    this.follow = false; // keep the end in view at each draw
    this.pending = false;
    this.above = spacer();
    this.below = spacer();
    for (const sp of [this.above, this.below]) sp.setAttribute("aria-hidden", "true");
    box.addEventListener("scroll", () => this.schedule());
  }

  /** atEnd tells whether the reader is at the end (within two rows). */
  atEnd() { return this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - this.rowHeight * 2; }

  /** setTotal changes the number of rows and draws again at the next frame. */
  setTotal(n) {
    this.total = n;
    this.schedule();
  }

  /** schedule draws at the next frame, once however often it is called before. */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  /** draw draws the rows in view now. */
  draw() {
    const rh = this.rowHeight;
    // The box's top may be above the list's (a table's header): rows are counted from the list's top.
    const offset = this.list === this.box ? 0
      : this.list.getBoundingClientRect().top - this.box.getBoundingClientRect().top + this.box.scrollTop;
    if (this.follow) this.box.scrollTop = offset + this.total * rh;
    const top = Math.max(0, this.box.scrollTop - offset);
    const first = Math.min(this.total, Math.max(0, Math.floor(top / rh) - this.margin));
    const last = Math.min(this.total, Math.ceil((top + (this.box.clientHeight || 600)) / rh) + this.margin);
    this.above.style.height = `${first * rh}px`;
    this.below.style.height = `${(this.total - last) * rh}px`;
    const rows = [this.above];
    for (let i = first; i < last; i++) rows.push(this.row(i));
    rows.push(this.below);
    this.list.replaceChildren(...rows);
    this.onDraw?.();
  }
}
