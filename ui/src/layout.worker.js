// The graph layout, off the page's thread: dagre lays a DAG out here while the page draws its
// table and timeline, so a run of 1,000 tasks neither blocks the page nor waits for it. One
// message in ({id, tasks}), one out ({id, layout} or {id, error}).
import dagre from "@dagrejs/dagre";
import { NODE_H, nodeWidth } from "./dagsize.js";

/** layout places tasks left to right; edges keep only dependencies on tasks of the graph. */
function layout(tasks) {
  const g = new dagre.graphlib.Graph();
  const wide = tasks.length > 200; // big graphs: tighter, so more of them fits the box
  // dagre's default ranker (network simplex) takes 3.6 s on 1,000 tasks in layers; tight-tree 0.4 s,
  // with the same ranks on the layered graphs workflows are.
  g.setGraph({ rankdir: "LR", nodesep: wide ? 8 : 16, ranksep: wide ? 28 : 48, marginx: 10, marginy: 10,
    ranker: wide ? "tight-tree" : "network-simplex" });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(tasks.map((t) => t.name));
  for (const t of tasks) g.setNode(t.name, { width: nodeWidth(t.name), height: NODE_H });
  for (const t of tasks) for (const d of t.depends_on || []) if (names.has(d)) g.setEdge(d, t.name);
  // Past a few hundred tasks, dagre's sweeps that cut edge crossings take a third of the time;
  // its first order (by depth-first search from the roots) keeps a workflow's layers readable.
  dagre.layout(g, { disableOptimalOrderHeuristic: wide });
  const { width = 0, height = 0 } = g.graph();
  const r = (v) => Math.round(v * 10) / 10; // a tenth of a pixel is all a drawing needs, and it keeps the layout small to store
  return {
    width, height,
    nodes: g.nodes().map((name) => { const n = g.node(name); return { name, x: r(n.x), y: r(n.y), width: n.width }; }),
    edges: g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points.map((p) => [r(p.x), r(p.y)]) })),
  };
}

self.onmessage = (e) => {
  const { id, tasks } = e.data;
  try {
    self.postMessage({ id, layout: layout(tasks) });
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message || err) });
  }
};
