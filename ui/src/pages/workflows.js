// The registered workflows: their last run (kept current by /api/v1/events) and schedule.
import { h, replace } from "../dom.js";
import { get, enc, query } from "../api.js";
import { Stream } from "../live.js";
import { badge, time } from "../format.js";
import { RUN_EVENT_STATUS, RUN_EVENTS } from "./runs.js";

export async function workflowsPage(root, { query: q, current }) {
  const filter = q.get("q") || "";
  const [list, scheds] = await Promise.all([
    get("/api/v1/workflows" + query({ q: filter, page_size: 100, page_token: q.get("page_token") })),
    get("/api/v1/schedules?page_size=500").catch(() => ({ schedules: [] })),
  ]);
  if (!current()) return;
  const sched = new Map(scheds.schedules.map((x) => [x.workflow, x]));
  const lastCells = new Map();
  const rows = list.workflows.map((w) => {
    const last = h("td", { class: "last-run" }, h("span", { class: "muted" }, "…"));
    lastCells.set(w.name, last);
    const sc = sched.get(w.name);
    return h("tr", { "data-workflow": w.name },
      h("td", {}, h("a", { href: `/workflows/${enc(w.name)}` }, w.name), w.description ? h("div", { class: "muted small" }, w.description) : null),
      last,
      h("td", {}, w.schedule ? [h("code", {}, w.schedule), sc ? h("div", { class: "small" }, sc.paused ? "‖ paused" : ["next ", time(sc.next)]) : null] : h("span", { class: "muted" }, "–")),
      h("td", { class: "num hide-narrow" }, w.task_count),
      h("td", { class: "hide-narrow" }, w.params.length ? w.params.map((p) => p.name).join(", ") : h("span", { class: "muted" }, "–")),
      h("td", { class: "hide-narrow" }, time(w.applied_at)));
  });
  const setLast = (name, run) => {
    const cell = lastCells.get(name);
    if (!cell) return;
    replace(cell, run ? [h("a", { href: `/runs/${enc(run.run_id)}`, class: "plain" }, badge(run.status)), " ", time(run.created_at)] : h("span", { class: "muted" }, "never run"));
    cell.dataset.runId = run?.run_id || "";
  };
  replace(root,
    h("div", { class: "head" }, h("h1", {}, "Workflows"), h("span", { class: "muted" }, `${list.workflows.length} registered`)),
    h("form", { class: "filters", role: "search" }, h("label", {}, "Name ", h("input", { name: "q", value: filter, type: "search" })), h("button", { type: "submit" }, "Search")),
    list.workflows.length ? h("div", { class: "table-wrap" }, h("table", { class: "list", "data-testid": "workflows" },
      h("thead", {}, h("tr", {}, ["Workflow", "Last run", "Schedule"].map((c) => h("th", { scope: "col" }, c)),
        h("th", { scope: "col", class: "num hide-narrow" }, "Tasks"), h("th", { scope: "col", class: "hide-narrow" }, "Parameters"), h("th", { scope: "col", class: "hide-narrow" }, "Applied"))),
      h("tbody", {}, rows))) : h("p", {}, "No workflow is registered. Register a folder's with ", h("code", {}, "ork workflows apply examples/"), "."),
    list.next_page_token ? h("a", { class: "button secondary", href: "/workflows" + query({ q: filter, page_token: list.next_page_token }) }, "More →") : null);

  // Each workflow's newest run: one small read each, a few at a time.
  const names = list.workflows.map((w) => w.name);
  const worker = async () => {
    while (names.length) {
      const name = names.shift();
      try {
        const r = await get("/api/v1/runs" + query({ workflow: name, page_size: 1 }));
        if (!current()) return;
        setLast(name, r.runs[0]);
      } catch { setLast(name, null); }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (!current()) return;
  const latest = new Map();
  new Stream("/api/v1/events", RUN_EVENTS, (name, ev) => {
    if (!ev.workflow || !lastCells.has(ev.workflow)) return;
    const cell = lastCells.get(ev.workflow);
    if (name === "run.submitted") {
      latest.set(ev.workflow, ev.run_id);
      setLast(ev.workflow, { run_id: ev.run_id, status: "pending", created_at: ev.time });
      return;
    }
    if (cell.dataset.runId !== ev.run_id) return;
    const status = name === "run.finished" ? ev.status : RUN_EVENT_STATUS[name];
    const b = cell.querySelector(".badge");
    if (status && b) b.replaceWith(badge(status));
  });
}
