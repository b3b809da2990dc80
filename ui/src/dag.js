// A DAG laid out by dagre and drawn as SVG: one <g data-task data-status> per task, reachable by
// keyboard (Tab, Enter) as well as by mouse; setStatus recolours a node in place.
import dagre from "@dagrejs/dagre";
import { s } from "./dom.js";
import { icon } from "./format.js";

const NODE_H = 34;
const CHAR_W = 7.4;

/**
 * drawDag lays tasks out left to right.
 * @param {{name: string, depends_on: string[]}[]} tasks
 * @param {(name: string) => string} statusOf
 * @param {(name: string) => void} [onSelect]
 */
export function drawDag(tasks, statusOf, onSelect) {
  const g = new dagre.graphlib.Graph();
  const wide = tasks.length > 200; // big graphs: tighter, top to bottom reads better when scrolled
  // dagre's default ranker (network simplex) takes 3.6 s on 1,000 tasks in layers; tight-tree 0.4 s,
  // with the same ranks on the layered graphs workflows are.
  g.setGraph({ rankdir: "LR", nodesep: wide ? 8 : 16, ranksep: wide ? 28 : 48, marginx: 10, marginy: 10,
    ranker: wide ? "tight-tree" : "network-simplex" });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(tasks.map((t) => t.name));
  for (const t of tasks) g.setNode(t.name, { width: Math.max(96, Math.min(260, t.name.length * CHAR_W + 46)), height: NODE_H });
  for (const t of tasks) for (const d of t.depends_on || []) if (names.has(d)) g.setEdge(d, t.name);
  dagre.layout(g);
  const { width = 0, height = 0 } = g.graph();

  const edges = s("g", { class: "edges" });
  for (const e of g.edges()) {
    const pts = g.edge(e).points;
    const d = "M" + pts.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" L");
    edges.append(s("path", { d, "marker-end": "url(#arrow)", "data-from": e.v, "data-to": e.w }));
  }
  const nodes = s("g", { class: "nodes" });
  const byName = new Map();
  for (const name of g.nodes()) {
    const n = g.node(name);
    const status = statusOf(name);
    const label = name.length * CHAR_W + 46 > n.width ? name.slice(0, Math.floor((n.width - 46) / CHAR_W) - 1) + "…" : name;
    const node = s("g", {
      class: "node", "data-task": name, "data-status": status, transform: `translate(${n.x - n.width / 2},${n.y - NODE_H / 2})`,
      tabindex: onSelect ? 0 : null, role: onSelect ? "button" : "img", "aria-label": `task ${name}: ${status}`,
      onclick: onSelect ? () => onSelect(name) : null,
      onkeydown: onSelect ? (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(name); } } : null,
    },
    s("title", {}, `${name}: ${status}`),
    s("rect", { width: n.width, height: NODE_H, rx: 7 }),
    s("text", { class: "icon", x: 14, y: NODE_H / 2 + 5, "text-anchor": "middle" }, icon(status)),
    s("text", { class: "label", x: 26, y: NODE_H / 2 + 4.5 }, label));
    byName.set(name, node);
    nodes.append(node);
  }
  const svg = s("svg", {
    "data-testid": "dag", class: "dag", width: Math.ceil(width), height: Math.ceil(height),
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`, role: "group", "aria-label": `graph of ${tasks.length} tasks`,
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
