// Log in with an API token (ork token create): kept in this browser's localStorage.
import { h, replace } from "../dom.js";
import { setToken, whoami, token } from "../api.js";

export async function loginPage(root, { query, navigate, loggedIn }) {
  const err = h("p", { class: "error", role: "alert" });
  const input = h("input", { type: "password", name: "token", "data-testid": "token-input", autocomplete: "current-password", required: true, size: 40, id: "token" });
  const form = h("form", { class: "login card", onsubmit: async (e) => {
    e.preventDefault();
    const prev = token();
    setToken(input.value.trim());
    try {
      await whoami();
      loggedIn();
      const next = query.get("next") || "/";
      navigate(next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/", { replace: true });
    } catch (x) {
      setToken(prev);
      err.textContent = x.status === 401 ? "This token is unknown, revoked or expired." : x.message;
    }
  } },
  h("h1", {}, "Log in"),
  h("p", {}, "This server requires an API token. Make one with ", h("code", {}, "ork token create --scope submit"), "; it is kept in this browser only."),
  h("label", { for: "token" }, "API token"), input, err,
  h("button", { type: "submit", class: "primary", "data-testid": "login-submit" }, "Log in"));
  replace(root, form);
  input.focus();
}
