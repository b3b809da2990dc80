// JSON shown as a tree whose objects and arrays fold (<details>), deep levels folded at first.
import { h } from "./dom.js";

export function jsonTree(value, depth = 0) {
  if (value === null) return h("span", { class: "j-null" }, "null");
  if (Array.isArray(value) || typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    if (entries.length === 0) return h("span", { class: "j-punct" }, open + close);
    const what = Array.isArray(value) ? `${entries.length} item${entries.length === 1 ? "" : "s"}` : `${entries.length} key${entries.length === 1 ? "" : "s"}`;
    return h("details", { class: "j-node", open: depth < 2 },
      h("summary", {}, h("span", { class: "j-punct" }, open), h("span", { class: "muted" }, ` ${what} `), h("span", { class: "j-punct" }, close)),
      h("ul", {}, entries.map(([k, v]) => h("li", {},
        Array.isArray(value) ? null : [h("span", { class: "j-key" }, JSON.stringify(k)), h("span", { class: "j-punct" }, ": ")],
        jsonTree(v, depth + 1)))));
  }
  if (typeof value === "string") return h("span", { class: "j-str" }, JSON.stringify(value));
  if (typeof value === "number") return h("span", { class: "j-num" }, String(value));
  return h("span", { class: "j-bool" }, String(value));
}

export function jsonView(value) {
  return h("div", { class: "json mono" }, jsonTree(value));
}
