// A registered workflow: its YAML, its DAG, its versions, its runs (live), a Run button asking for
// its parameters, and its schedule (pause, resume, next tick).
import { h, replace } from "../dom.js";
import { get, post, enc, can, markCreated, ApiError } from "../api.js";
import { Stream } from "../live.js";
import { time, shortId } from "../format.js";
import { dagInto, warmLayout } from "../dag.js";
import { highlightYAML } from "../yaml.js";
import { runRow, runsTable, applyRunEvent, RUN_EVENTS } from "./runs.js";

function typeName(t) {
  if (!t) return "any";
  if (t.alias) return t.alias;
  if (t.kind === "array") return `[${typeName(t.elem)}]`;
  if (t.kind === "object") return `{${(t.fields || []).map((f) => `${f.name}: ${typeName(f.type)}`).join(", ")}}`;
  return t.kind;
}

function paramInput(p) {
  const kind = p.type?.kind || "str";
  const name = `param-${p.name}`;
  const def = p.default === undefined || p.default === null ? "" : typeof p.default === "string" ? p.default : JSON.stringify(p.default);
  const common = { name, id: name, placeholder: def ? `default: ${def}` : "required", required: p.default === undefined || p.default === null ? true : null, "data-kind": kind };
  if (kind === "object" || kind === "array") return h("textarea", { ...common, rows: 3, class: "mono", placeholder: def || "JSON" });
  if (kind === "int") return h("input", { ...common, type: "number", step: 1, inputmode: "numeric" });
  if (kind === "float") return h("input", { ...common, type: "number", step: "any", inputmode: "decimal" });
  if (kind === "bool") return h("input", { ...common, type: "text", list: "bool-values", pattern: "true|false", placeholder: def ? `default: ${def}` : "true or false" });
  if (kind === "date") return h("input", { ...common, type: "text", pattern: "\\d{4}-\\d{2}-\\d{2}", placeholder: def ? `default: ${def}` : "YYYY-MM-DD" });
  return h("input", { ...common, type: "text" });
}

/** paramValue reads a param's input as JSON for the API, or undefined to take its default. */
function paramValue(el) {
  const v = el.value.trim();
  if (v === "") return undefined;
  switch (el.dataset.kind) {
    case "int": case "float": return Number(v);
    case "bool": return v === "true";
    case "object": case "array": return JSON.parse(v);
    default: return el.value;
  }
}

export async function workflowPage(root, { args: [name], navigate, identified, current }) {
  warmLayout();
  const [wf, runs] = await Promise.all([get(`/api/v1/workflows/${enc(name)}`), get(`/api/v1/runs?workflow=${enc(name)}&page_size=20`), identified]);
  const sched = !wf.schedule ? null
    : await get(`/api/v1/schedules/${enc(name)}`).catch((e) => { if (e instanceof ApiError && e.status === 404) return null; throw e; });
  if (!current()) return;
  root.setAttribute("data-testid", "workflow-page");
  root.setAttribute("data-workflow", wf.name);

  // Run form.
  const formBox = h("div", { class: "run-form" });
  const runButton = can("submit") ? h("button", { type: "button", class: "primary", "data-testid": "run-button", "aria-expanded": "false", onclick: () => {
    const open = formBox.childElementCount === 0;
    runButton.setAttribute("aria-expanded", String(open));
    open ? openForm() : replace(formBox);
  } }, "▶ Run") : null;

  function openForm() {
    const err = h("div", { class: "error", role: "alert" });
    const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
    const inputs = wf.params.map(paramInput);
    const form = h("form", { class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const params = {};
      try {
        inputs.forEach((el, i) => { const v = paramValue(el); if (v !== undefined) params[wf.params[i].name] = v; });
      } catch (x) { err.textContent = `A parameter is not valid JSON: ${x.message}`; return; }
      const submit = form.querySelector("[data-testid=run-submit]");
      submit.disabled = true;
      try {
        const res = await post(`/api/v1/workflows/${enc(wf.name)}/runs`, { params }, { "Idempotency-Key": key });
        markCreated(res.run_id);
        navigate(`/runs/${enc(res.run_id)}`);
      } catch (x) {
        submit.disabled = false;
        replace(err, x.message, x.problem?.errors ? h("ul", {}, x.problem.errors.map((e) => h("li", {}, `${e.path || ""} ${e.message}`))) : null);
      }
    } },
    h("h2", {}, `Run ${wf.name}`),
    wf.params.length ? wf.params.map((p, i) => h("div", { class: "field" },
      h("label", { for: `param-${p.name}` }, h("span", { class: "mono" }, p.name), " ", h("span", { class: "type" }, typeName(p.type))),
      inputs[i], p.description ? h("div", { class: "muted small" }, p.description) : null)) : h("p", { class: "muted" }, "This workflow declares no parameters."),
    h("datalist", { id: "bool-values" }, h("option", { value: "true" }), h("option", { value: "false" })),
    err,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", "data-testid": "run-submit" }, "Start the run"),
      h("button", { type: "button", class: "secondary", onclick: () => { replace(formBox); runButton.setAttribute("aria-expanded", "false"); } }, "Cancel")));
    replace(formBox, form);
    (inputs[0] || form.querySelector("[data-testid=run-submit]")).focus();
  }

  // Schedule.
  const schedBox = h("section", { class: "card", "aria-label": "schedule" });
  function drawSched(sc) {
    if (!sc) { replace(schedBox, h("h2", {}, "Schedule"), h("p", { class: "muted" }, "No schedule: runs start when asked.")); return; }
    const toggle = can("submit") ? h("button", { type: "button", "data-testid": sc.paused ? "schedule-resume" : "schedule-pause", onclick: async (e) => {
      e.currentTarget.disabled = true;
      try { drawSched(await post(`/api/v1/schedules/${enc(wf.name)}/${sc.paused ? "resume" : "pause"}`)); } catch (x) { schedBox.append(h("p", { class: "error" }, x.message)); }
    } }, sc.paused ? "▶ Resume schedule" : "‖ Pause schedule") : null;
    replace(schedBox, h("div", { class: "head" }, h("h2", {}, "Schedule"), toggle),
      h("dl", { class: "facts" },
        h("dt", {}, "Cron"), h("dd", {}, h("code", {}, sc.cron), ` (${sc.timezone})`),
        h("dt", {}, "State"), h("dd", {}, sc.paused ? `‖ paused${sc.paused_by ? ` by ${sc.paused_by}` : ""}` : "▶ active"),
        h("dt", {}, sc.upcoming?.length > 1 ? "Next ticks" : "Next tick"), h("dd", { "data-testid": "schedule-next" },
          sc.paused ? h("span", { class: "muted" }, "none while paused")
            : sc.upcoming?.length ? h("ol", { class: "ticks" }, sc.upcoming.map((t) => h("li", {}, time(t)))) : time(sc.next)),
        sc.pending?.length ? [h("dt", {}, "Waiting ticks"), h("dd", {}, sc.pending.map((t) => [time(t), " "]))] : null,
        h("dt", {}, "Last fire"), h("dd", {}, sc.last_fire ? [time(sc.last_fire.nominal), " → ", h("a", { href: `/runs/${enc(sc.last_fire.run_id)}`, class: "mono" }, shortId(sc.last_fire.run_id))] : "never"),
        h("dt", {}, "Policies"), h("dd", {}, `overlap ${sc.overlap}, catch-up ${sc.catchup}`),
        h("dt", {}, "Fired / skipped"), h("dd", {}, `${sc.fires} / ${sc.skipped}`)));
  }
  drawSched(sched);

  const yaml = wf.source
    ? h("pre", { class: "code yaml", "data-testid": "workflow-yaml", tabindex: 0, "aria-label": "the workflow's YAML" }, h("code", {}, highlightYAML(wf.source)))
    : h("pre", { class: "code", "data-testid": "workflow-yaml", tabindex: 0, "aria-label": "the compiled plan" }, h("code", {}, JSON.stringify(wf.plan, null, 2)));
  const runsBody = h("tbody", {}, runs.runs.map(runRow));
  const table = runsTable([], "workflow-runs");
  table.querySelector("tbody").replaceWith(runsBody);

  const dagBox = h("div", { class: "dag-wrap" });
  dagInto(dagBox, wf.dag || [], () => "pending", undefined, current);
  replace(root,
    h("div", { class: "head" }, h("h1", {}, wf.name), runButton),
    wf.description ? h("p", {}, wf.description) : null,
    formBox,
    h("dl", { class: "facts" },
      h("dt", {}, "Version"), h("dd", { class: "mono", title: wf.version }, wf.version.slice(0, 12), h("span", { class: "muted" }, ` · revision ${wf.revision}`)),
      h("dt", {}, "Applied"), h("dd", {}, time(wf.applied_at), wf.applied_by ? ` by ${wf.applied_by}` : ""),
      h("dt", {}, "Folder"), h("dd", { class: "mono" }, wf.dir || "–"),
      h("dt", {}, "Parameters"), h("dd", {}, wf.params.length ? wf.params.map((p) => h("span", { class: "chip" }, h("span", { class: "mono" }, p.name), `: ${typeName(p.type)}`)) : "none")),
    h("div", { class: "run-grid" },
      h("section", { class: "card", "aria-label": "graph" }, h("h2", {}, "Graph"), dagBox),
      schedBox),
    h("section", { class: "card", "aria-label": "runs" }, h("div", { class: "head" }, h("h2", {}, "Runs"), h("a", { href: `/?workflow=${enc(wf.name)}` }, "All runs of this workflow →")),
      runs.runs.length ? h("div", { class: "table-wrap" }, table) : [h("p", { class: "muted" }, "No runs yet."), h("div", { class: "table-wrap", hidden: true }, table)]),
    h("section", { class: "card", "aria-label": "source" }, h("h2", {}, wf.source ? "YAML" : "Compiled plan (registered without its YAML)"), yaml),
    h("section", { class: "card", "aria-label": "versions" }, h("h2", {}, "Versions"),
      h("ol", { class: "versions" }, (wf.versions || []).map((v) => h("li", {}, h("span", { class: "mono", title: v.version }, v.version.slice(0, 12)), " ", time(v.created_at),
        v.version === wf.version ? h("span", { class: "chip" }, "current") : null)))));

  new Stream("/api/v1/events", RUN_EVENTS, (n, ev) => {
    if (ev.workflow && ev.workflow !== wf.name) return;
    if (applyRunEvent(runsBody, n, ev) || n !== "run.submitted") return;
    runsBody.prepend(runRow({ run_id: ev.run_id, workflow: wf.name, status: "pending", triggered_by: ev.triggered_by, created_at: ev.time, error: null }));
    const wrap = table.closest(".table-wrap");
    if (wrap) wrap.hidden = false;
    while (runsBody.children.length > 20) runsBody.lastElementChild.remove();
  });
}
