// The size of a DAG node, shared by the layout (in its worker) and the drawing.
export const NODE_H = 34;
export const CHAR_W = 7.4;
const PAD = 46; // the status icon on the left, a margin on the right

/** nodeWidth is the width a task's name needs, within bounds. */
export const nodeWidth = (name) => Math.max(96, Math.min(260, name.length * CHAR_W + PAD));

/** nodeLabel is the name, cut with an ellipsis where the widest node cannot hold it. */
export const nodeLabel = (name, width) =>
  name.length * CHAR_W + PAD > width ? name.slice(0, Math.floor((width - PAD) / CHAR_W) - 1) + "…" : name;
