// authstate-fetch.js: fetch() for pages served by an authstate-protected app. No build step:
//
//   <script type="module">
//     import { login, authFetch, logout } from "/static/authstate-fetch.js";
//     await login("alice", "correct horse battery staple");
//     const response = await authFetch("/api/notes", { method: "POST", body: JSON.stringify({ text: "hi" }) });
//   </script>
//
// What it does for you:
// - sends the CSRF token (from the readable CSRF cookie) as X-CSRF-Token on POST, PUT,
//   PATCH and DELETE; authstate refuses those requests without it (403 csrf_failed);
// - sends cookies (credentials: "same-origin"); the auth cookie itself is HttpOnly and
//   never visible to scripts;
// - in hybrid mode, when a request answers 401 because the 15-minute access token ran
//   out, calls POST /auth/refresh once and repeats the request. In the other modes
//   /auth/refresh answers 404 and the 401 is returned as it is.
//
// A request body is sent twice when a refresh happens: pass a string, FormData,
// URLSearchParams or Blob, not a ReadableStream.

const CSRF_COOKIES = ["__Host-authstate-csrf", "authstate-csrf"]; // the second without Secure (unsafe_insecure_cookies)
const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The CSRF token from the readable CSRF cookie, or null before the first login or GET /auth/csrf. */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (CSRF_COOKIES.includes(name)) return decodeURIComponent(value.join("="));
  }
  return null;
}

function send(input, init) {
  const method = (init.method ?? "GET").toUpperCase();
  const headers = new Headers(init.headers);
  if (UNSAFE_METHODS.has(method)) {
    const token = csrfToken();
    if (token !== null) headers.set("X-CSRF-Token", token);
  }
  if (typeof init.body === "string" && !headers.has("Content-Type")) {
    headers.set("Content-Type", "application/json");
  }
  return fetch(input, { ...init, method, headers, credentials: "same-origin" });
}

let refreshing = null;

/** POST /auth/refresh (hybrid mode); resolves to true when new credentials were issued. */
export function refresh() {
  // One refresh at a time in this page; the server's grace window covers other tabs.
  refreshing ??= send("/auth/refresh", { method: "POST" })
    .then((response) => response.ok)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** fetch() with the CSRF header, cookies, and one refresh-and-retry on 401. */
export async function authFetch(input, init = {}) {
  const response = await send(input, init);
  if (response.status !== 401 || !(await refresh())) return response;
  return send(input, init);
}

/** POST /auth/login; resolves to the JSON body ({user, mode, csrf_token, expires_at}) or throws. */
export async function login(username, password) {
  const response = await send("/auth/login", {
    method: "POST",
    body: JSON.stringify({ username, password }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${body.error}: ${body.detail}`);
  return body;
}

/** POST /auth/logout: revokes the session or token on every node and clears the cookies. */
export function logout() {
  return send("/auth/logout", { method: "POST" });
}
