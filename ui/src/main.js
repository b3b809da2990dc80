// Ork's web UI: a history-API router over pages built from the public HTTP API and its streams.
import "./style.css";
import { h, replace } from "./dom.js";
import { handleUnauthorized, identity, setToken, whoami } from "./api.js";
import { closeAll, onLiveChange } from "./live.js";
import { refreshTimes } from "./format.js";
import { runsPage } from "./pages/runs.js";
import { runPage } from "./pages/run.js";
import { workflowsPage } from "./pages/workflows.js";
import { workflowPage } from "./pages/workflow.js";
import { loginPage } from "./pages/login.js";
import { warmLayout } from "./dag.js";

const routes = [
  [/^\/$/, runsPage],
  [/^\/runs\/([^/]+)$/, runPage],
  [/^\/workflows$/, workflowsPage],
  [/^\/workflows\/([^/]+)$/, workflowPage],
  [/^\/login$/, loginPage],
];

const live = h("span", { class: "live", "data-testid": "live", "data-state": "closed", role: "status", "aria-live": "polite" });
const who = h("span", { class: "who" });
const main = h("main", { id: "main", tabindex: "-1" });
const nav = h("nav", { "aria-label": "main" },
  h("a", { href: "/", "data-nav": "runs" }, "Runs"),
  h("a", { href: "/workflows", "data-nav": "workflows" }, "Workflows"));

document.getElementById("app").append(
  h("a", { class: "skip", href: "#main" }, "Skip to content"),
  h("header", { class: "top" },
    h("a", { class: "brand", href: "/" }, h("img", { src: "/favicon.svg", alt: "", width: 22, height: 22 }), "Ork"),
    nav, h("span", { class: "spacer" }), who, live),
  main);

onLiveChange((s) => {
  live.dataset.state = s === "open" ? "open" : "closed";
  live.textContent = { open: "● Live", idle: "○ Not live", connecting: "◌ Connecting" }[s] || "◌ Reconnecting";
  live.title = s === "open" ? "receiving updates as they happen"
    : s === "idle" ? "nothing on this page changes any more: no connection held"
      : s === "connecting" ? "opening the live connection"
      : "the connection dropped: reconnecting (the tab may be in the background)";
});

let seq = 0;

/** navigate goes to path (pushing it on the history) and renders its page. */
export function navigate(path, { replace: repl = false } = {}) {
  if (repl) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function renderWho() {
  const me = identity();
  if (!me.tokens_required) { replace(who); return; }
  replace(who, h("span", { title: `token ${me.name}` }, `${me.name} · ${me.scope}`), " ",
    h("button", { type: "button", class: "link", onclick: () => { setToken(""); navigate("/login"); } }, "Log out"));
}

async function render() {
  const my = ++seq;
  closeAll();
  const path = location.pathname;
  for (const a of nav.querySelectorAll("a")) {
    const on = a.dataset.nav === "runs" ? path === "/" || path.startsWith("/runs") : path.startsWith("/workflows");
    on ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current");
  }
  const found = routes.find(([re]) => re.test(path));
  if (!found) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No page at ", h("code", {}, path), ". ", h("a", { href: "/" }, "See the runs")));
    return;
  }
  const [re, page] = found;
  const args = path.match(re).slice(1).map(decodeURIComponent);
  const root = h("div", { class: "page" });
  replace(main, root);
  try {
    // Who the token is, asked alongside the page's own data: pages that show what a scope allows
    // (buttons) wait for it; the others draw as soon as their data is here.
    const identified = page === loginPage || identity().name ? Promise.resolve()
      : whoami().then(() => { if (my === seq) renderWho(); });
    identified.catch(() => {}); // its error reaches the page that waits for it, or the line below
    await Promise.all([identified, page(root, { args, query: new URLSearchParams(location.search), navigate, loggedIn: renderWho, identified, current: () => my === seq })]);
  } catch (err) {
    if (my !== seq || err.status === 401) return;
    replace(root, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, err.message));
  }
}

handleUnauthorized(() => {
  if (location.pathname === "/login") return;
  navigate("/login?next=" + encodeURIComponent(location.pathname + location.search), { replace: true });
});

// Links inside the app change the page without a reload.
document.addEventListener("click", (e) => {
  const a = e.target.closest?.("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || a.target || a.hasAttribute("download")) return;
  if (url.hash && url.pathname === location.pathname) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);
// Relative times follow the clock; this reads no data.
setInterval(refreshTimes, 30000);
render();
// The graph layout worker starts once the first page is drawn, to be ready for the first graph
// (run and workflow pages start it themselves before they fetch one).
(window.requestIdleCallback || setTimeout)(warmLayout);
