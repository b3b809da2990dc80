// The runs page: newest first, filtered by workflow, status and time, paged with the API's
// cursor; new runs and status changes arrive on /api/v1/events.
import { h, replace } from "../dom.js";
import { get, query, enc } from "../api.js";
import { Stream } from "../live.js";
import { badge, time, duration, shortId, TERMINAL_RUN } from "../format.js";

const RUN_STATUSES = ["pending", "running", "paused", "success", "failed", "cancelled"];
const PAGE = 50;

// The run's status after each run event (task events do not change it).
export const RUN_EVENT_STATUS = {
  "run.submitted": "pending", "run.started": "running", "run.paused": "paused", "run.resumed": "running",
};
export const RUN_EVENTS = ["run.submitted", "run.started", "run.paused", "run.resumed", "run.finished"];

/** toLocalInput and fromLocalInput convert between RFC 3339 and a datetime-local input's value. */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}
function fromLocalInput(v) { return v ? new Date(v).toISOString() : ""; }

export function runRow(r) {
  const dur = r.started_at ? (r.finished_at ? new Date(r.finished_at) - new Date(r.started_at) : null) : null;
  return h("tr", { "data-run-id": r.run_id, "data-status": r.status, "data-started": r.started_at || null },
    h("td", {}, h("a", { href: `/runs/${enc(r.run_id)}`, title: r.run_id, class: "mono" }, shortId(r.run_id))),
    h("td", { class: "status-cell" }, badge(r.status, "run-status")),
    h("td", {}, h("a", { href: `/workflows/${enc(r.workflow)}` }, r.workflow)),
    h("td", { class: "hide-narrow" }, r.triggered_by || "–"),
    h("td", {}, time(r.created_at)),
    h("td", { class: "hide-narrow num", "data-col": "duration" }, dur == null ? (TERMINAL_RUN.has(r.status) ? "–" : "…") : duration(dur)),
    h("td", { class: "hide-narrow error-cell", title: r.error || "" }, r.error || ""));
}

export function runsTable(rows, testid = "runs") {
  return h("table", { class: "list", "data-testid": testid },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Workflow"),
      h("th", { scope: "col", class: "hide-narrow" }, "Triggered by"), h("th", { scope: "col" }, "Created"),
      h("th", { scope: "col", class: "hide-narrow" }, "Duration"), h("th", { scope: "col", class: "hide-narrow" }, "Error"))),
    h("tbody", {}, rows));
}

/** applyRunEvent updates a run row in place from a run event; it reports whether the row exists. */
export function applyRunEvent(tbody, name, ev) {
  const tr = tbody.querySelector(`tr[data-run-id="${CSS.escape(ev.run_id || "")}"]`);
  if (!tr) return false;
  const status = name === "run.finished" ? ev.status : RUN_EVENT_STATUS[name];
  const cur = tr.dataset.status;
  if (!status || TERMINAL_RUN.has(cur)) return true; // a status never moves back
  if (status === "pending" && cur !== "pending") return true;
  tr.dataset.status = status;
  tr.querySelector(".status-cell").replaceChildren(badge(status, "run-status"));
  if (name === "run.started" && ev.time) tr.dataset.started = ev.time;
  if (name === "run.finished") {
    if (ev.error) { const c = tr.querySelector(".error-cell"); c.textContent = ev.error; c.title = ev.error; }
    // The duration from the run's own events (started, finished), when this page saw the start.
    const from = tr.dataset.started;
    tr.querySelector('[data-col="duration"]').textContent = from && ev.time ? duration(new Date(ev.time) - new Date(from)) : "–";
  }
  return true;
}

export async function runsPage(root, { query: q, navigate, current }) {
  const f = { workflow: q.get("workflow") || "", status: q.get("status") || "", since: q.get("since") || "", until: q.get("until") || "" };
  const tokens = (q.get("page_token") || "").split(",").filter(Boolean); // the cursors of the pages before, and this one's
  const pageToken = tokens[tokens.length - 1] || "";

  const go = (next) => {
    const params = { ...f, ...next };
    navigate("/" + query(params));
  };
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const d = new FormData(e.target);
    go({ workflow: d.get("workflow").trim(), status: d.get("status"), since: fromLocalInput(d.get("since")), until: fromLocalInput(d.get("until")), page_token: "" });
  } },
  h("label", {}, "Workflow ", h("input", { name: "workflow", value: f.workflow, placeholder: "any", size: 14, list: "wf-names" })),
  h("datalist", { id: "wf-names" }),
  h("label", {}, "Status ", h("select", { name: "status" }, h("option", { value: "" }, "any"),
    RUN_STATUSES.map((s) => h("option", { value: s, selected: s === f.status }, s)))),
  h("label", {}, "From ", h("input", { type: "datetime-local", name: "since", value: toLocalInput(f.since) })),
  h("label", {}, "To ", h("input", { type: "datetime-local", name: "until", value: toLocalInput(f.until) })),
  h("button", { type: "submit" }, "Filter"),
  (f.workflow || f.status || f.since || f.until) ? h("a", { href: "/", class: "button secondary" }, "Clear") : null);

  const tbody = h("tbody");
  const table = runsTable([]);
  table.querySelector("tbody").replaceWith(tbody);
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const pager = h("nav", { class: "pager", "aria-label": "pages" });
  replace(root, h("div", { class: "head" }, h("h1", {}, "Runs"), status), form, h("div", { class: "table-wrap" }, table), pager);

  const list = await get("/api/v1/runs" + query({ ...f, page_size: PAGE, page_token: pageToken }));
  if (!current()) return;
  replace(tbody, list.runs.map(runRow));
  status.textContent = list.runs.length ? (pageToken ? `page ${tokens.length + 1}` : "newest first") : "No runs match.";

  const pageLink = (label, toks) => h("a", { class: "button secondary", href: "/" + query({ ...f, page_token: toks.join(",") }) }, label);
  replace(pager,
    tokens.length ? pageLink("⇤ Newest", []) : null,
    tokens.length ? pageLink("← Newer", tokens.slice(0, -1)) : null,
    list.next_page_token ? pageLink("Older →", [...tokens, list.next_page_token]) : null);

  // Workflow names for the filter, best effort.
  get("/api/v1/workflows?page_size=500").then((wl) => {
    const dl = root.querySelector("#wf-names");
    if (dl) replace(dl, wl.workflows.map((w) => h("option", { value: w.name })));
  }).catch(() => {});

  // Only the first page changes: older pages are history. A page ending before now never does.
  if (pageToken || f.until) return;
  new Stream("/api/v1/events", RUN_EVENTS, (name, ev) => {
    if (applyRunEvent(tbody, name, ev) || name !== "run.submitted") return;
    if ((f.workflow && ev.workflow !== f.workflow) || (f.status && f.status !== "pending")) return;
    const r = { run_id: ev.run_id, workflow: ev.workflow, status: "pending", triggered_by: ev.triggered_by, created_at: ev.time, error: null };
    tbody.prepend(runRow(r));
    while (tbody.children.length > PAGE) tbody.lastElementChild.remove();
    status.textContent = "newest first";
  });
}
