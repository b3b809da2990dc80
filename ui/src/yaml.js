// A small YAML highlighter, line by line: comments, keys, strings, numbers, booleans. It only
// colours; it does not parse.
import { h } from "./dom.js";

const SCALAR = /^(\s*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|true|false|null|~|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s*(?:#.*)?)$/;

function value(text) {
  const m = text.match(SCALAR);
  if (!m) {
    const c = text.search(/\s#/);
    if (c >= 0) return [text.slice(0, c), h("span", { class: "y-comment" }, text.slice(c))];
    return [text];
  }
  const cls = m[2].startsWith('"') || m[2].startsWith("'") ? "y-str" : /^(true|false|null|~)$/.test(m[2]) ? "y-bool" : "y-num";
  return [m[1], h("span", { class: cls }, m[2]), m[3] ? h("span", { class: "y-comment" }, m[3]) : null];
}

export function highlightYAML(src) {
  const out = [];
  for (const line of src.split("\n")) {
    const comment = line.match(/^(\s*)(#.*)$/);
    const key = line.match(/^(\s*(?:- )?)([A-Za-z0-9_.\-"' ]+?)(:)(\s|$)(.*)$/);
    if (comment) out.push(comment[1], h("span", { class: "y-comment" }, comment[2]));
    else if (key) out.push(key[1], h("span", { class: "y-key" }, key[2]), key[3], key[4], ...value(key[5]));
    else out.push(...value(line));
    out.push("\n");
  }
  return out;
}
