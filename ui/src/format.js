// Statuses, times and durations as people read them.
import { h } from "./dom.js";

// Each status has an icon as well as a colour, so it reads without colour.
const ICONS = {
  pending: "○", dispatched: "◔", running: "◐", paused: "‖", success: "✓", failed: "✗",
  skipped: "–", cancelled: "⊘", lost: "?",
};

export const TERMINAL_RUN = new Set(["success", "failed", "cancelled"]);
export const TERMINAL_TASK = new Set(["success", "failed", "skipped", "cancelled"]);

export function icon(status) { return ICONS[status] || "•"; }

/** badge is a status with its icon; the testid lets tests read the status as text. */
export function badge(status, testid) {
  return h("span", { class: `badge st-${status}`, "data-status": status },
    h("span", { class: "icon", "aria-hidden": "true" }, icon(status)), " ",
    h("span", { "data-testid": testid || null, class: "st-text" }, status));
}

// Relative times are written here in English, as the rest of the UI is: the first Intl formatter a
// page makes loads the browser's locale data (25 to 80 ms of main thread on a 2-core machine), which
// would sit between a page's data and its first rows. The absolute time in each title uses Intl, in
// the reader's locale, once the page is idle.
function units(n, unit) {
  const a = Math.abs(n);
  const u = a === 1 ? unit : `${unit}s`;
  return n < 0 ? `${a} ${u} ago` : `in ${a} ${u}`;
}

/** relative says how long ago (or in how long) t is: "3 minutes ago", "in 2 hours", "yesterday". */
export function relative(t, now = Date.now()) {
  const when = new Date(t);
  const d = (when.getTime() - now) / 1000;
  const a = Math.abs(d);
  if (Number.isNaN(a)) return String(t);
  if (a < 1) return "now";
  if (a < 45) return units(Math.round(d), "second");
  if (a < 2700) return units(Math.round(d / 60), "minute");
  if (a < 64800) return units(Math.round(d / 3600), "hour");
  if (a < 30 * 86400) {
    const days = Math.round(d / 86400);
    return days === -1 ? "yesterday" : days === 1 ? "tomorrow" : units(days, "day");
  }
  const p2 = (x) => String(x).padStart(2, "0");
  return `${when.getFullYear()}-${p2(when.getMonth() + 1)}-${p2(when.getDate())}`;
}

let dtf = null;
/** absolute is t in the reader's locale and in RFC 3339: "4 Dec 2026, 17:02:10 (2026-12-04T17:02:10.000Z)". */
export function absolute(t) {
  dtf ||= new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  return dtf.format(new Date(t)) + " (" + new Date(t).toISOString() + ")";
}

// Times drawn since the page was last idle, waiting for their title.
let untitled = [];
function titleTimes() {
  const els = untitled;
  untitled = [];
  for (const el of els) el.title = absolute(el.dateTime);
}
const whenIdle = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));

/** time is a <time> showing t relative, absolute in its title; refreshTimes keeps it current. */
export function time(t) {
  if (!t) return h("span", { class: "muted" }, "–");
  const el = h("time", { datetime: t, "data-rel": "" }, relative(t));
  if (untitled.push(el) === 1) whenIdle(titleTimes, { timeout: 1000 });
  return el;
}

/** refreshTimes rewrites every relative time on the page (no request: only the clock). */
export function refreshTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time[data-rel]")) el.textContent = relative(el.dateTime, now);
}

/** duration writes milliseconds as "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function duration(ms) {
  if (ms == null || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

// UUIDv7 ids of runs started close together share their first characters (the time): show the
// start and the end.
export function shortId(id) { return !id ? "" : id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id; }
