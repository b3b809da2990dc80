// A Gantt of a run: one row per task, each attempt drawn as its wait (dispatched, not started:
// hatched) and its run (started to finished: solid, coloured by the attempt's status).
import { h } from "./dom.js";
import { duration, icon } from "./format.js";

const ms = (t) => (t ? new Date(t).getTime() : null);

/**
 * drawTimeline renders into el.
 * @param {HTMLElement} el
 * @param {{order: string[], tasks: object, attempts: object[], run: object, now: number}} m
 * @param {(name: string) => void} onSelect
 */
export function drawTimeline(el, m, onSelect) {
  const byTask = new Map();
  for (const a of m.attempts) {
    if (!byTask.has(a.task)) byTask.set(a.task, []);
    byTask.get(a.task).push(a);
  }
  let t0 = ms(m.run.started_at) ?? ms(m.run.created_at) ?? m.now;
  let t1 = ms(m.run.finished_at) ?? m.now;
  for (const a of m.attempts) {
    const d = ms(a.dispatched_at) ?? ms(a.started_at);
    if (d != null && d < t0) t0 = d;
    const f = ms(a.finished_at);
    if (f != null && f > t1) t1 = f;
  }
  const span = Math.max(1, t1 - t0);
  const pct = (t) => `${(((t - t0) / span) * 100).toFixed(3)}%`;
  const width = (a, b) => `${Math.max(0.15, ((b - a) / span) * 100).toFixed(3)}%`;

  const rows = m.order.map((name) => {
    const task = m.tasks[name] || { status: "pending" };
    const bars = [];
    for (const a of byTask.get(name) || []) {
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
    return h("div", { class: "tl-row", role: "listitem" },
      h("button", { type: "button", class: "tl-name link", onclick: () => onSelect(name), title: `${name}: ${task.status}` },
        h("span", { class: `st-${task.status} icon`, "aria-hidden": "true" }, icon(task.status)), " ", name),
      h("div", { class: "tl-track" }, bars));
  });
  el.replaceChildren(
    h("div", { class: "tl-axis muted" }, h("span", {}, "0"), h("span", {}, duration(span))),
    h("div", { class: "tl-rows", role: "list" }, rows),
    h("p", { class: "legend muted" }, h("span", { class: "bar wait sample" }), " waiting for an executor  ",
      h("span", { class: "bar run st-success sample" }), " running (coloured by status; hover a bar for times)"));
}
