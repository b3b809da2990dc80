// A Gantt of a run: one row per task, each attempt drawn as its wait (dispatched, not started:
// hatched) and its run (started to finished: solid, coloured by the attempt's status). The rows
// are windowed (window.js): a run of 1,000 tasks draws the screenful in view.
import { h } from "./dom.js";
import { duration, icon } from "./format.js";
import { RowWindow } from "./window.js";

const ROW = 22; // px, the CSS height of .tl-row
const ms = (t) => (t ? new Date(t).getTime() : null);

export class Timeline {
  /**
   * @param {HTMLElement} el where the timeline goes
   * @param {(name: string) => void} onSelect
   */
  constructor(el, onSelect) {
    this.onSelect = onSelect;
    this.m = null;
    this.byTask = new Map();
    this.span = 1;
    this.t0 = 0;
    this.spanLabel = h("span", {}, "");
    const box = h("div", { class: "tl-rows", role: "list", tabindex: 0, "aria-label": "tasks over time" });
    this.win = new RowWindow(box, box, ROW, (i) => this.row(i), { margin: 20 });
    el.replaceChildren(
      h("div", { class: "tl-axis muted" }, h("span", {}, "0"), this.spanLabel),
      box,
      h("p", { class: "legend muted" }, h("span", { class: "bar wait sample" }), " waiting for an executor  ",
        h("span", { class: "bar run st-success sample" }), " running (coloured by status; hover a bar for times)"));
  }

  /**
   * update draws the rows in view again for the run as it is now.
   * @param {{order: string[], tasks: object, attempts: object[], run: object, now: number}} m
   */
  update(m) {
    this.m = m;
    this.byTask = new Map();
    for (const a of m.attempts) {
      if (!this.byTask.has(a.task)) this.byTask.set(a.task, []);
      this.byTask.get(a.task).push(a);
    }
    let t0 = ms(m.run.started_at) ?? ms(m.run.created_at) ?? m.now;
    let t1 = ms(m.run.finished_at) ?? m.now;
    for (const a of m.attempts) {
      const d = ms(a.dispatched_at) ?? ms(a.started_at);
      if (d != null && d < t0) t0 = d;
      const f = ms(a.finished_at);
      if (f != null && f > t1) t1 = f;
    }
    this.t0 = t0;
    this.span = Math.max(1, t1 - t0);
    this.spanLabel.textContent = duration(this.span);
    this.win.total = m.order.length;
    this.win.draw();
  }

  row(i) {
    const { m, t0, span } = this;
    const name = m.order[i];
    const pct = (t) => `${(((t - t0) / span) * 100).toFixed(3)}%`;
    const width = (a, b) => `${Math.max(0.15, ((b - a) / span) * 100).toFixed(3)}%`;
    const task = m.tasks[name] || { status: "pending" };
    const bars = [];
    for (const a of this.byTask.get(name) || []) {
      const d = ms(a.dispatched_at), st = ms(a.started_at), f = ms(a.finished_at);
      const end = f ?? m.now;
      if (d != null) {
        const wEnd = st ?? end;
        bars.push(h("span", { class: "bar wait", style: { left: pct(d), width: width(d, wEnd) },
          title: `${name} attempt ${a.attempt}: waited ${duration(wEnd - d)} for an executor` }));
      }
      if (st != null) {
        bars.push(h("span", { class: `bar run st-${a.status}`, style: { left: pct(st), width: width(st, end) },
          title: `${name} attempt ${a.attempt}: ${a.status}, ran ${duration(end - st)}` }));
      }
    }
    return h("div", { class: "tl-row", role: "listitem", "aria-posinset": i + 1, "aria-setsize": m.order.length },
      h("button", { type: "button", class: "tl-name link", onclick: () => this.onSelect(name), title: `${name}: ${task.status}` },
        h("span", { class: `st-${task.status} icon`, "aria-hidden": "true" }, icon(task.status)), " ", name),
      h("div", { class: "tl-track" }, bars));
  }
}
