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

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** relative says how long ago (or in how long) t is: "3 minutes ago". */
export function relative(t, now = Date.now()) {
  const d = (new Date(t).getTime() - now) / 1000;
  const a = Math.abs(d);
  if (a < 45) return rtf.format(Math.round(d), "second");
  if (a < 2700) return rtf.format(Math.round(d / 60), "minute");
  if (a < 64800) return rtf.format(Math.round(d / 3600), "hour");
  if (a < 30 * 86400) return rtf.format(Math.round(d / 86400), "day");
  return dtf.format(new Date(t));
}

export function absolute(t) { return dtf.format(new Date(t)) + " (" + new Date(t).toISOString() + ")"; }

/** time is a <time> showing t relative, absolute in its title; refreshTimes keeps it current. */
export function time(t) {
  if (!t) return h("span", { class: "muted" }, "–");
  return h("time", { datetime: t, title: absolute(t), "data-rel": "" }, relative(t));
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
