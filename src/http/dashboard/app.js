/**
 * The dashboard's entry module: login (validated with GET /api/v1/whoami), the view tabs, and
 * the polling of whichever view is shown. Each view lives in its own module and gets a shared
 * context (the login's role, the latest /api/v1/status, a notice line).
 */
import {
  ApiError,
  authorization,
  call,
  forgetLogin,
  get,
  onUnauthorized,
  storedLogin,
  storeLogin,
} from "./api.js";
import { byId } from "./dom.js";
import { overviewView } from "./overview.js";
import { clientsView } from "./clients.js";
import { sessionsView } from "./sessions.js";
import { retainedView } from "./retained.js";
import { clusterView } from "./cluster.js";
import { mqttView } from "./mqtt_panel.js";

/** How often the shown view refreshes itself. */
const POLL_MS = 2000;

/** Shared by the views. */
const ctx = {
  /** {user, role} from whoami */
  me: null,
  /** The latest /api/v1/status answer, or null. */
  status: null,
  isAdmin() {
    return this.me?.role === "admin";
  },
  /** The stored login (header and, for Basic, user and password for the MQTT panel). */
  login() {
    return storedLogin();
  },
  /** Shows a line under the tabs; `bad` marks it as an error. */
  notify(message, bad = false) {
    const n = byId("notice");
    n.textContent = message;
    n.classList.toggle("bad", bad);
  },
  /** Reports an API failure in the notice line. */
  fail(what, e) {
    const detail = e instanceof ApiError && e.status === 403
      ? "this login may only read (403)"
      : e.message;
    this.notify(`${what}: ${detail}`, true);
  },
  async refreshStatus() {
    this.status = await get("/api/v1/status");
    return this.status;
  },
};

const views = {
  overview: overviewView(ctx),
  clients: clientsView(ctx),
  sessions: sessionsView(ctx),
  retained: retainedView(ctx),
  cluster: clusterView(ctx),
  mqtt: mqttView(ctx),
};
let current = "overview";
let poller = 0;
let ticking = false;

function showView(name) {
  if (!views[name]) name = "overview";
  current = name;
  for (const key of Object.keys(views)) byId(`view-${key}`).hidden = key !== name;
  for (const b of document.querySelectorAll(".tabs button")) {
    if (b.dataset.view === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  ctx.notify("");
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  tick();
}

/** Refreshes the shown view; never two at once (a slow broker must not pile up requests). */
async function tick() {
  if (ticking || !ctx.me) return;
  ticking = true;
  try {
    await views[current].refresh?.();
  } catch (e) {
    ctx.fail("refresh failed", e);
  } finally {
    ticking = false;
  }
}

async function enter(me) {
  ctx.me = me;
  byId("who").textContent = `${me.user} (${me.role === "admin" ? "admin" : "read-only"})`;
  document.body.dataset.role = me.role;
  byId("logout").hidden = false;
  byId("login").hidden = true;
  byId("app").hidden = false;
  try {
    await ctx.refreshStatus();
  } catch (e) {
    ctx.fail("status unavailable", e);
  }
  for (const v of Object.values(views)) v.start?.();
  showView(location.hash.slice(1));
  clearInterval(poller);
  poller = setInterval(tick, POLL_MS);
}

function leave(message = "") {
  clearInterval(poller);
  for (const v of Object.values(views)) v.stop?.();
  forgetLogin();
  ctx.me = null;
  ctx.status = null;
  delete document.body.dataset.role;
  byId("who").textContent = "";
  byId("logout").hidden = true;
  byId("app").hidden = true;
  byId("login").hidden = false;
  byId("login-error").textContent = message;
}

async function login(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const data = Object.fromEntries(new FormData(form));
  const error = byId("login-error");
  if (!data.apiKey && !data.username) {
    error.textContent = "Enter a username and password, or an API key.";
    return;
  }
  const header = authorization(data);
  error.textContent = "Checking…";
  try {
    const me = await call("GET", "/api/v1/whoami", undefined, header);
    storeLogin(
      data.apiKey ? { header } : { header, username: data.username, password: data.password },
    );
    form.reset();
    error.textContent = "";
    await enter(me);
  } catch (e) {
    error.textContent = e instanceof ApiError && e.status === 401
      ? "Wrong username, password or API key."
      : `Cannot log in: ${e.message}`;
  }
}

byId("login-form").addEventListener("submit", login);
byId("logout").addEventListener("click", () => leave());
for (const b of document.querySelectorAll(".tabs button")) {
  b.addEventListener("click", () => showView(b.dataset.view));
}
onUnauthorized(() => {
  if (ctx.me) leave("Your login is no longer accepted; log in again.");
});

// A reload within the same tab keeps the login (sessionStorage) if it still works. Without one,
// whoami is asked anyway: a broker whose API needs no login (loopback, no users or keys
// configured) answers it, and the form is skipped.
get("/api/v1/whoami").then((me) => {
  if (!storedLogin()) storeLogin({ header: "" });
  return enter(me);
}, () => leave());
