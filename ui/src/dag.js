// A DAG laid out by dagre (in a worker: layout.worker.js) and drawn as SVG: one
// <g data-task data-status> per task, reachable by keyboard (Tab, Enter) as well as by mouse;
// setStatus recolours a node in place.
import { h, s, replace } from "./dom.js";
import { icon } from "./format.js";
import { NODE_H, nodeLabel } from "./dagsize.js";

/* global __LAYOUT_WORKER__ */
// The worker's hashed file name, set by build.mjs.
const WORKER_URL = __LAYOUT_WORKER__;

let worker = null;
let nextId = 1;
const waiting = new Map(); // request id → {resolve, reject}
const cache = new Map(); // graph signature → layout, the last few (a version's graph never changes)
const CACHED = 8;

// The same layouts in localStorage, so a reload or another tab showing a run of the same version
// draws its graph at once. Storage may be full or refused: the worker answers then.
const STORED = "ork.layouts"; // the signatures' hashes, oldest first
const hash = (str) => { // FNV-1a, 32 bits
  let x = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) x = Math.imul(x ^ str.charCodeAt(i), 0x01000193);
  return (x >>> 0).toString(36);
};
function stored(key) {
  try {
    const v = JSON.parse(localStorage.getItem(`ork.layout.${hash(key)}`) || "null");
    return v && v.key === key ? v.layout : null;
  } catch { return null; }
}
function store(key, layout) {
  try {
    const id = hash(key);
    const ids = (JSON.parse(localStorage.getItem(STORED) || "[]")).filter((x) => x !== id);
    ids.push(id);
    while (ids.length > CACHED) localStorage.removeItem(`ork.layout.${ids.shift()}`);
    localStorage.setItem(`ork.layout.${id}`, JSON.stringify({ key, layout }));
    localStorage.setItem(STORED, JSON.stringify(ids));
  } catch { /* full or refused: the next visit lays it out again */ }
}

function layoutWorker() {
  if (worker) return worker;
  worker = new Worker(WORKER_URL);
  worker.onmessage = (e) => {
    const { id, layout, error } = e.data;
    const w = waiting.get(id);
    waiting.delete(id);
    if (w) error ? w.reject(new Error(error)) : w.resolve(layout);
  };
  worker.onerror = (e) => { // the worker is gone: every request still waiting fails, the next starts another
    e.preventDefault();
    for (const w of waiting.values()) w.reject(new Error(e.message || "the layout worker failed"));
    waiting.clear();
    worker.terminate();
    worker = null;
  };
  return worker;
}

function remember(key, layout) {
  cache.delete(key); // most recently used last
  cache.set(key, layout);
  if (cache.size > CACHED) cache.delete(cache.keys().next().value);
}

/** warmLayout starts the layout worker ahead of the first graph: call it before fetching one. */
export function warmLayout() { layoutWorker(); }

/**
 * layoutDag places tasks left to right, off the page's thread; the same graph again is answered
 * from memory or from localStorage.
 * @param {{name: string, depends_on: string[]}[]} tasks
 * @returns {Promise<{width: number, height: number, nodes: {name: string, x: number, y: number, width: number}[], edges: {from: string, to: string, points: number[][]}[]}>}
 */
export function layoutDag(tasks) {
  const key = tasks.map((t) => t.name + "<" + (t.depends_on || []).join(",")).join(";");
  const hit = cache.get(key) || stored(key);
  if (hit) {
    remember(key, hit);
    return Promise.resolve(hit);
  }
  return new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    layoutWorker().postMessage({ id, tasks: tasks.map((t) => ({ name: t.name, depends_on: t.depends_on || [] })) });
  }).then((layout) => {
    remember(key, layout);
    store(key, layout);
    return layout;
  });
}

/**
 * drawDag draws a layout.
 * @param {Awaited<ReturnType<typeof layoutDag>>} layout
 * @param {(name: string) => string} statusOf
 * @param {(name: string) => void} [onSelect]
 */
export function drawDag(layout, statusOf, onSelect) {
  const edges = s("g", { class: "edges" });
  for (const e of layout.edges) {
    const d = "M" + e.points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" L");
    edges.append(s("path", { d, "marker-end": "url(#arrow)", "data-from": e.from, "data-to": e.to }));
  }
  const nodes = s("g", { class: "nodes" });
  const byName = new Map();
  for (const n of layout.nodes) {
    const name = n.name;
    const status = statusOf(name);
    const node = s("g", {
      class: "node", "data-task": name, "data-status": status, transform: `translate(${n.x - n.width / 2},${n.y - NODE_H / 2})`,
      tabindex: onSelect ? 0 : null, role: onSelect ? "button" : "img", "aria-label": `task ${name}: ${status}`,
      onclick: onSelect ? () => onSelect(name) : null,
      onkeydown: onSelect ? (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(name); } } : null,
    },
    s("title", {}, `${name}: ${status}`),
    s("rect", { width: n.width, height: NODE_H, rx: 7 }),
    s("text", { class: "icon", x: 14, y: NODE_H / 2 + 5, "text-anchor": "middle" }, icon(status)),
    s("text", { class: "label", x: 26, y: NODE_H / 2 + 4.5 }, nodeLabel(name, n.width)));
    byName.set(name, node);
    nodes.append(node);
  }
  const width = Math.ceil(layout.width), height = Math.ceil(layout.height);
  const svg = s("svg", {
    "data-testid": "dag", class: "dag", width, height,
    viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `graph of ${layout.nodes.length} tasks`,
  },
  s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
  edges, nodes);

  return {
    svg,
    setStatus(name, status) {
      const node = byName.get(name);
      if (!node || node.dataset.status === status) return;
      node.setAttribute("data-status", status);
      node.setAttribute("aria-label", `task ${name}: ${status}`);
      node.querySelector("title").textContent = `${name}: ${status}`;
      node.querySelector(".icon").textContent = icon(status);
    },
    select(name) {
      for (const [n, node] of byName) n === name ? node.classList.add("selected") : node.classList.remove("selected");
    },
  };
}

/**
 * dagInto draws tasks' graph into box once laid out: a line says so meanwhile, or why it failed.
 * It resolves to the drawn graph, or null when it failed or keep() no longer holds.
 * @param {HTMLElement} box
 * @param {{name: string, depends_on: string[]}[]} tasks
 * @param {(name: string) => string} statusOf read when the graph is drawn, so the statuses are those of that moment
 * @param {((name: string) => void) | undefined} onSelect
 * @param {() => boolean} keep false once the page is left
 */
export async function dagInto(box, tasks, statusOf, onSelect, keep) {
  const laid = layoutDag(tasks);
  replace(box, h("p", { class: "muted" }, `Laying out ${tasks.length} tasks…`));
  try {
    const layout = await laid;
    if (!keep()) return null;
    const dag = drawDag(layout, statusOf, onSelect);
    replace(box, dag.svg);
    return dag;
  } catch (err) {
    if (keep()) replace(box, h("p", { class: "error" }, `The graph could not be laid out: ${err.message}`));
    return null;
  }
}
