// The HTTP API (/api/v1) and its event streams, with the token the user logged in with.
const TOKEN_KEY = "ork.token";

export function token() { return localStorage.getItem(TOKEN_KEY) || ""; }
export function setToken(t) { t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY); }

/** ApiError is a problem the API answered (RFC 9457): status, kind and the server's detail. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.kind = (this.problem.type || "").split("/").pop();
  }
}

// onUnauthorized is set by the app: it sends the user to the login page.
let onUnauthorized = () => {};
export function handleUnauthorized(fn) { onUnauthorized = fn; }

/** request calls the API and returns its JSON; an error answer throws an ApiError. */
export async function request(method, path, body, headers = {}) {
  const h = { Accept: "application/json", ...headers };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}, headers) => request("POST", path, body, headers);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;

// Runs this page started (a trigger, a rerun): the API answers with their id at once, while the
// recorder stores them a moment later, so their first read may find nothing yet.
const created = new Set();
export function markCreated(runId) { created.add(runId); }

/** getRun reads a run; one this page just started is read again while it is not stored yet. */
export async function getRun(id) {
  const until = Date.now() + 30000;
  for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return await get(`/api/v1/runs/${enc(id)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404 || !created.has(id) || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

// Scopes, least to most, as GET /api/v1/whoami names them.
const SCOPES = ["public", "read", "submit", "admin"];
let me = { name: "", scope: "read", tokens_required: false };

/** whoami asks the server who the token is (a 401 sends the user to log in). */
export async function whoami() {
  me = await get("/api/v1/whoami");
  return me;
}
export function identity() { return me; }
/** can tells whether the token's scope allows what needs scope need. */
export function can(need) { return SCOPES.indexOf(me.scope) >= SCOPES.indexOf(need); }
