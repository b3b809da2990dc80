// A run: its DAG coloured by status, its timeline, its tasks, and the selected task's attempts,
// output and log, all kept current from the run's event stream while it runs. A run that has
// ended holds no connection: the page then sends nothing.
import { h, replace } from "../dom.js";
import { get, getRun, markCreated, post, enc, can } from "../api.js";
import { Stream } from "../live.js";
import { badge, time, duration, shortId, TERMINAL_RUN, TERMINAL_TASK } from "../format.js";
import { dagInto, warmLayout } from "../dag.js";
import { Timeline } from "../timeline.js";
import { RowWindow } from "../window.js";
import { LogView } from "../loglist.js";
import { jsonView } from "../json.js";

const TASK_EVENTS = ["task.dispatched", "task.started", "task.succeeded", "task.failed", "task.skipped", "task.cancelled"];
const EVENT_STATUS = {
  "task.dispatched": "dispatched", "task.started": "running", "task.succeeded": "success",
  "task.failed": "failed", "task.skipped": "skipped", "task.cancelled": "cancelled",
};
const TASK_ROW = 33; // px, the CSS height of a row of the tasks table (.tasks-scroll tbody tr)
const RANK = { pending: 0, dispatched: 1, running: 2, paused: 2, lost: 3 };
const rank = (s) => RANK[s] ?? 4;

/** Model is the run as the page knows it: the API's run, moved forward by its events. */
class Model {
  constructor(run) { this.load(run); }

  load(run) {
    this.run = run;
    this.tasks = run.tasks || {};
    this.attempts = run.attempts || [];
    const dag = run.dag && run.dag.length ? run.dag : null;
    this.dag = dag;
    this.order = dag ? dag.map((t) => t.name) : Object.keys(this.tasks).sort();
  }

  attempt(task, n) {
    let a = this.attempts.find((x) => x.task === task && x.attempt === n);
    if (!a) {
      a = { task, attempt: n, status: "pending", instance: "", exit_code: null, error: "", reason: "", duration_ms: 0, dispatched_at: null, started_at: null, finished_at: null };
      this.attempts.push(a);
    }
    return a;
  }

  /** apply moves the run forward by one event; it returns the task that changed, if any. */
  apply(name, ev) {
    const r = this.run;
    if (name.startsWith("run.")) {
      if (TERMINAL_RUN.has(r.status)) return null;
      if (name === "run.started" || name === "run.resumed") r.status = "running";
      if (name === "run.started") r.started_at = r.started_at || ev.time;
      if (name === "run.paused") r.status = "paused";
      if (name === "run.finished") { r.status = ev.status; r.error = ev.error || null; r.finished_at = ev.time; }
      return null;
    }
    const status = EVENT_STATUS[name];
    if (!status || !ev.task) return null;
    const t = this.tasks[ev.task] || (this.tasks[ev.task] = { status: "pending", attempts: 0, output: null, error: null, started_at: null, finished_at: null, duration_ms: null, executor: "" });
    const n = ev.attempt || 0;
    if (n < t.attempts || (n === t.attempts && rank(status) < rank(t.status))) return null; // an old event replayed
    if (n > t.attempts) { t.started_at = null; t.finished_at = null; t.duration_ms = null; t.error = null; }
    t.attempts = n;
    t.status = status;
    if (ev.executor) t.executor = ev.executor;
    if (status === "running") t.started_at = ev.time;
    if (TERMINAL_TASK.has(status)) {
      t.finished_at = ev.time;
      t.duration_ms = ev.duration_ms ?? t.duration_ms;
      if (status === "success") t.output = ev.output ?? null;
      t.error = ev.error || null;
    }
    if (n > 0) {
      const a = this.attempt(ev.task, n);
      if (rank(status) >= rank(a.status)) a.status = status;
      if (status === "dispatched") a.dispatched_at = a.dispatched_at || ev.time;
      if (status === "running") { a.started_at = ev.time; a.instance = ev.instance || a.instance; }
      if (TERMINAL_TASK.has(status)) {
        a.finished_at = ev.time;
        a.duration_ms = ev.duration_ms ?? a.duration_ms;
        a.error = ev.error || "";
        a.reason = ev.reason || "";
        if (ev.exit_code != null) a.exit_code = ev.exit_code;
        a.instance = ev.instance || a.instance;
      }
    }
    return ev.task;
  }
}

function paramsList(params) {
  if (!params || typeof params !== "object" || !Object.keys(params).length) return h("span", { class: "muted" }, "none");
  return h("dl", { class: "params" }, Object.entries(params).map(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, JSON.stringify(v))]));
}

export async function runPage(root, { args: [id], query, navigate, identified, current }) {
  warmLayout(); // its script loads while the run is read
  const [run] = await Promise.all([getRun(id), identified]); // the buttons need the token's scope
  const m = new Model(run);
  if (!current()) return;
  root.setAttribute("data-testid", "run-page");
  root.setAttribute("data-run-id", m.run.run_id);
  let selected = query.get("task") || "";
  let dag = null;
  let logStream = null;
  let ticker = null;

  const statusEl = h("span", { class: "run-badge" });
  const notice = h("p", { class: "notice", role: "status", "aria-live": "polite" });
  const buttons = h("div", { class: "actions" });
  const meta = h("div", { class: "meta" });
  const dagBox = h("div", { class: "dag-wrap", tabindex: -1 });
  const timeline = h("div", { class: "timeline", "data-testid": "timeline" });
  const tl = new Timeline(timeline, select);
  const tasksBody = h("tbody");
  const tasksTable = h("table", { class: "list", "data-testid": "tasks" },
    h("thead", {}, h("tr", { "aria-rowindex": 1 }, h("th", { scope: "col", class: "c-task" }, "Task"), h("th", { scope: "col", class: "c-status" }, "Status"),
      h("th", { scope: "col", class: "num c-num" }, "Attempts"), h("th", { scope: "col", class: "num c-num" }, "Duration"),
      h("th", { scope: "col", class: "num c-exit hide-narrow" }, "Exit"), h("th", { scope: "col", class: "hide-narrow" }, "Error"))),
    tasksBody);
  const tasksBox = h("div", { class: "table-wrap tasks-scroll", tabindex: 0, "aria-label": "tasks, scrollable" }, tasksTable);
  const detail = h("section", { class: "card detail", "aria-label": "task detail" });

  const act = (label, testid, fn, primary) => h("button", { type: "button", "data-testid": testid, class: primary ? "primary" : "", onclick: async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    notice.textContent = `${label}…`;
    try { await fn(); } catch (err) { notice.textContent = `${label}: ${err.message}`; notice.classList.add("error"); }
    drawButtons();
  } }, label);
  const control = (what) => async () => {
    await post(`/api/v1/runs/${enc(m.run.run_id)}/${what}`, {});
    notice.classList.remove("error");
    notice.textContent = `${what} requested: the scheduler acts on it in a moment.`;
  };
  const rerun = (mode) => async () => {
    const res = await post(`/api/v1/runs/${enc(m.run.run_id)}/rerun`, { mode });
    markCreated(res.run_id);
    navigate(`/runs/${enc(res.run_id)}`);
  };

  function drawButtons() {
    if (!can("submit")) { replace(buttons); return; }
    const st = m.run.status;
    const ended = TERMINAL_RUN.has(st);
    const all = [
      [act("Cancel", "cancel", control("cancel")), !ended],
      [act("Pause", "pause", control("pause")), st === "running" || st === "pending"],
      [act("Resume", "resume", control("resume")), st === "paused"],
      [act("Rerun failed", "rerun-failed", rerun("failed"), true), st === "failed" || st === "cancelled"],
      [act("Rerun all", "rerun-all", rerun("all")), ended],
    ];
    replace(buttons, all.map(([b, on]) => { b.disabled = !on; return b; }));
  }

  function drawMeta() {
    const r = m.run;
    replace(statusEl, badge(r.status, "run-status"));
    const dur = r.started_at ? (r.finished_at ? new Date(r.finished_at) - new Date(r.started_at) : Date.now() - new Date(r.started_at)) : null;
    replace(meta, h("dl", { class: "facts wide" },
      h("dt", {}, "Workflow"), h("dd", {}, h("a", { href: `/workflows/${enc(r.workflow)}` }, r.workflow), " ", h("span", { class: "muted mono", title: r.version }, (r.version || "").slice(0, 12))),
      h("dt", {}, "Triggered by"), h("dd", {}, r.triggered_by || "–", r.scheduled_for ? [" · tick ", time(r.scheduled_for)] : null,
        r.idempotency_key ? h("span", { class: "muted" }, ` · key ${r.idempotency_key}`) : null),
      h("dt", {}, "Created"), h("dd", {}, time(r.created_at)),
      h("dt", {}, "Started"), h("dd", {}, time(r.started_at)),
      h("dt", {}, "Finished"), h("dd", {}, time(r.finished_at)),
      h("dt", {}, "Duration"), h("dd", {}, dur == null ? "–" : duration(dur)),
      h("dt", {}, "Parameters"), h("dd", {}, paramsList(r.params))),
    r.error ? h("p", { class: "error", role: "alert" }, h("strong", {}, "Error: "), r.error) : null);
  }

  function taskRow(name) {
    const t = m.tasks[name] || { status: "pending", attempts: 0 };
    const last = m.attempts.filter((a) => a.task === name).sort((a, b) => b.attempt - a.attempt)[0];
    return h("tr", { "data-testid": "task-row", "data-task": name, "data-status": t.status, class: name === selected ? "selected clickable" : "clickable",
      onclick: (e) => { if (!e.target.closest("button")) select(name); } },
      h("td", {}, h("button", { type: "button", class: "link", onclick: () => select(name), "aria-pressed": String(name === selected) }, name)),
      h("td", {}, badge(t.status)),
      h("td", { class: "num" }, t.attempts || 0),
      h("td", { class: "num" }, duration(t.duration_ms)),
      h("td", { class: "num hide-narrow" }, last?.exit_code ?? "–"),
      h("td", { class: "error-cell hide-narrow", title: t.error || "" }, t.error || ""));
  }

  // The table is windowed: of a run's 1,000 tasks, the rows in view are drawn.
  const tasksWin = new RowWindow(tasksBox, tasksBody, TASK_ROW, (i) => {
    const tr = taskRow(m.order[i]);
    tr.setAttribute("aria-rowindex", i + 2); // the header is row 1
    return tr;
  }, { spacer: () => h("tr", { class: "win-spacer" }, h("td")) });

  function drawTasks() {
    tasksTable.setAttribute("aria-rowcount", m.order.length + 1);
    tasksWin.total = m.order.length;
    tasksWin.draw();
  }

  function updateTask(name) {
    tasksWin.schedule();
    dag?.setStatus(name, m.tasks[name]?.status || "pending");
  }

  let tlPending = false;
  function drawTl() {
    if (tlPending) return;
    tlPending = true;
    requestAnimationFrame(() => { tlPending = false; tl.update({ ...m, now: Date.now() }); });
  }

  // drawDagBox asks for the layout first thing, so the worker lays the graph out while this thread
  // draws the rest.
  async function drawDagBox() {
    if (!m.dag) { replace(dagBox, h("p", { class: "muted" }, "The graph of this run's version is not stored.")); return; }
    dag = await dagInto(dagBox, m.dag, (n) => m.tasks[n]?.status || "pending", select, current);
    if (dag && selected) dag.select(selected);
  }

  let info = null; // the selected task's attempts and output, redrawn as its events come

  // drawDetail opens the selected task: its facts and a log view fed once, by a stream while the
  // run runs or by the stored pages once it has ended.
  function drawDetail() {
    logStream?.close();
    logStream = null;
    if (!selected) { info = null; replace(detail, h("h2", {}, "Task"), h("p", { class: "muted" }, "Select a task in the graph, the timeline or the table to see its attempts, output and log.")); return; }
    const name = selected;
    const log = new LogView();
    info = h("div", { class: "task-info" });
    replace(detail, info, h("h3", {}, "Log"), log.root);
    drawInfo();
    loadLog(name, log, m.attempts.filter((a) => a.task === name).map((a) => a.attempt).sort((a, b) => a - b));
  }

  function drawInfo() {
    if (!info || !selected) return;
    const name = selected;
    const t = m.tasks[name] || { status: "pending" };
    const attempts = m.attempts.filter((a) => a.task === name).sort((a, b) => a.attempt - b.attempt);
    replace(info,
      h("div", { class: "head" }, h("h2", {}, "Task ", h("span", { class: "mono" }, name)), badge(t.status),
        h("button", { type: "button", class: "link close", "aria-label": "close the task", onclick: () => select("") }, "✕")),
      t.error ? h("p", { class: "error" }, t.error) : null,
      h("h3", {}, "Attempts"),
      attempts.length ? h("div", { class: "table-wrap" }, h("table", { class: "list compact" },
        h("thead", {}, h("tr", {}, ["#", "Status", "Waited", "Ran", "Exit", "Executor", "Error"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, attempts.map((a) => h("tr", {},
          h("td", { class: "num" }, a.attempt), h("td", {}, badge(a.status)),
          h("td", { class: "num" }, a.dispatched_at && a.started_at ? duration(new Date(a.started_at) - new Date(a.dispatched_at)) : "–"),
          h("td", { class: "num" }, a.finished_at && a.started_at ? duration(a.duration_ms || (new Date(a.finished_at) - new Date(a.started_at))) : a.started_at ? "running" : "–"),
          h("td", { class: "num" }, a.exit_code ?? "–"),
          h("td", { class: "mono small" }, a.instance || "–"),
          h("td", { class: "error-cell" }, [a.error, a.reason ? h("span", { class: "muted" }, ` (${a.reason})`) : null])))))) : h("p", { class: "muted" }, "Not started."),
      h("h3", {}, "Output"),
      t.output != null ? jsonView(t.output) : h("p", { class: "muted" }, t.status === "success" ? "No output." : "None yet."));
  }

  async function loadLog(name, log, attemptNos) {
    if (!TERMINAL_RUN.has(m.run.status)) {
      logStream = new Stream(`/api/v1/runs/${enc(m.run.run_id)}/logs/stream?task=${enc(name)}`, ["log"], (_, b) => {
        log.append(b.lines.map((l) => ({ ...l, attempt: b.attempt })));
      });
      return;
    }
    // An ended run's lines are all stored: read them page by page, then nothing more.
    for (const n of attemptNos) {
      let offset = null;
      for (;;) {
        const page = await get(`/api/v1/runs/${enc(m.run.run_id)}/logs?task=${enc(name)}&attempt=${n}&limit=10000${offset != null ? `&offset=${offset}` : ""}`);
        if (selected !== name || !current()) return;
        log.append(page.lines);
        if (page.next_offset == null) break;
        offset = page.next_offset;
      }
    }
  }

  function select(name) {
    selected = name;
    const u = new URL(location.href);
    name ? u.searchParams.set("task", name) : u.searchParams.delete("task");
    history.replaceState(null, "", u.pathname + u.search);
    dag?.select(name);
    for (const tr of tasksBody.children) {
      tr.classList.toggle("selected", tr.dataset.task === name);
      tr.querySelector("button")?.setAttribute("aria-pressed", String(tr.dataset.task === name));
    }
    drawDetail();
    if (name && window.matchMedia("(max-width: 900px)").matches) detail.scrollIntoView({ block: "start" });
  }

  replace(root,
    h("div", { class: "head" }, h("h1", {}, "Run ", h("span", { class: "mono", title: m.run.run_id }, shortId(m.run.run_id))), statusEl, buttons),
    notice, meta,
    h("div", { class: "run-grid" },
      h("div", { class: "run-main" },
        h("section", { class: "card", "aria-label": "graph" }, h("h2", {}, "Graph"), dagBox),
        h("section", { class: "card", "aria-label": "timeline" }, h("h2", {}, "Timeline"), timeline)),
      detail),
    h("section", { class: "card", "aria-label": "tasks" }, h("h2", {}, "Tasks"), tasksBox));

  drawDagBox();
  drawMeta(); drawButtons(); drawTasks(); drawTl(); drawDetail();
  if (TERMINAL_RUN.has(m.run.status)) return;

  // A burst of events (a wide run's tasks ending together) redraws each changed task once per frame.
  const dirty = new Set();
  const changed = (task) => {
    if (dirty.size === 0) requestAnimationFrame(flush);
    dirty.add(task);
  };
  function flush() {
    for (const task of dirty) {
      updateTask(task);
      if (task === selected) drawInfo();
    }
    dirty.clear();
  }

  // While it runs: its events, from its start (those already read change nothing), and a clock
  // that only redraws the growing bars.
  ticker = setInterval(() => { if (!current()) { clearInterval(ticker); return; } drawTl(); drawMeta(); }, 1000);
  const events = new Stream(`/api/v1/runs/${enc(m.run.run_id)}/events`, ["run.started", "run.paused", "run.resumed", "run.finished", ...TASK_EVENTS], async (name, ev) => {
    if (!current()) { events.close(); return; }
    const before = m.run.status;
    const task = m.apply(name, ev);
    if (task) changed(task);
    if (m.run.status !== before) { drawMeta(); drawButtons(); }
    drawTl();
    if (name === "run.finished") {
      clearInterval(ticker);
      // The database has the whole run by now: read it once for what events do not carry.
      try {
        const run = await get(`/api/v1/runs/${enc(m.run.run_id)}`);
        if (!current()) return;
        m.load(run);
        dirty.clear();
        drawMeta(); drawButtons(); drawTasks(); drawTl(); drawInfo();
        for (const n of m.order) dag?.setStatus(n, m.tasks[n]?.status || "pending");
      } catch { /* the events already told the end */ }
    }
  }, { onEnd: () => clearInterval(ticker) });
}
