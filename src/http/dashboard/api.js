/**
 * The dashboard's side of the HTTP API: the credential (kept in sessionStorage, so it is gone
 * when the tab closes), JSON calls that send it with `X-Requested-With` (which keeps the browser
 * from popping its own Basic-auth dialog on a 401), and the stats stream read with fetch() so
 * the Authorization header can be sent (EventSource cannot send headers).
 */

const KEY = "mqttwk.auth";
const MARK = { "X-Requested-With": "mqttwk-dashboard" };

/** An API answer that was not 2xx; `status` and the server's `error` message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Base64 of UTF-8 text (btoa alone only takes Latin-1). */
export function base64Utf8(text) {
  let bin = "";
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * The Authorization header value for a login: Basic for a user and password, Bearer for an
 * API key.
 * @param {{username?:string, password?:string, apiKey?:string}} login
 */
export function authorization(login) {
  if (login.apiKey) return `Bearer ${login.apiKey.trim()}`;
  return `Basic ${base64Utf8(`${login.username ?? ""}:${login.password ?? ""}`)}`;
}

/** The stored login: {header, username?, password?} or null. */
export function storedLogin() {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    return v && typeof v.header === "string" ? v : null;
  } catch {
    return null;
  }
}

/** Keeps the login for this tab (the MQTT panel reuses user and password). */
export function storeLogin(login) {
  sessionStorage.setItem(KEY, JSON.stringify(login));
}

export function forgetLogin() {
  sessionStorage.removeItem(KEY);
}

/** Listeners told when any call gets a 401 (the stored login no longer works). */
const unauthorized = new Set();
export function onUnauthorized(fn) {
  unauthorized.add(fn);
}

function headers(extra = {}) {
  const login = storedLogin();
  return { ...MARK, ...(login?.header ? { Authorization: login.header } : {}), ...extra };
}

/**
 * Calls the API; resolves with the parsed JSON body, rejects with ApiError.
 * @param {string} method
 * @param {string} path e.g. "/api/v1/clients?prefix=a"
 * @param {unknown} [body] sent as JSON
 * @param {string} [header] an Authorization value to use instead of the stored one
 */
export async function call(method, path, body, header) {
  const h = headers(body === undefined ? {} : { "Content-Type": "application/json" });
  if (header) h.Authorization = header;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, `the broker did not answer (${e.message})`);
  }
  let data = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const message = data && typeof data.error === "string" ? data.error : `HTTP ${res.status}`;
    if (res.status === 401 && !header) { for (const fn of unauthorized) fn(); }
    throw new ApiError(res.status, message);
  }
  return data;
}

/** GET shorthand. */
export const get = (path) => call("GET", path);

/** One path segment, encoded (client ids and topics may hold "/" and anything else). */
export const seg = (s) => encodeURIComponent(s);

/**
 * Splits server-sent-event text into the data of complete events; returns the unfinished rest.
 * @param {string} text
 * @returns {{events: string[], rest: string}}
 */
export function parseSse(text) {
  const events = [];
  const norm = text.replace(/\r\n?/g, "\n");
  const blocks = norm.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    const data = block.split("\n").filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).replace(/^ /, ""));
    if (data.length) events.push(data.join("\n"));
  }
  return { events, rest };
}

/** Largest unfinished event kept while reading the stream (bounded buffer). */
const MAX_PENDING = 64 * 1024;

/**
 * Reads /api/v1/stats/stream until `signal` aborts, calling `onSample` with each parsed event
 * and `onState` with "live", "reconnecting" or "stopped". Reconnects with a growing pause
 * (1 s to 15 s) when the stream ends or fails.
 * @param {(sample: any) => void} onSample
 * @param {(state: string, detail?: string) => void} onState
 * @param {AbortSignal} signal
 */
export async function streamStats(onSample, onState, signal) {
  let pause = 1000;
  while (!signal.aborted) {
    try {
      const res = await fetch("/api/v1/stats/stream", {
        headers: headers({ Accept: "text/event-stream" }),
        signal,
        cache: "no-store",
      });
      if (res.status === 401) {
        for (const fn of unauthorized) fn();
        return onState("stopped", "login no longer valid");
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      onState("live");
      pause = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const { events, rest } = parseSse(buf + value);
        if (rest.length > MAX_PENDING) throw new Error("oversized event in the stats stream");
        buf = rest;
        for (const e of events) {
          try {
            onSample(JSON.parse(e));
          } catch { /* a malformed event is skipped, the stream goes on */ }
        }
      }
      throw new Error("stream ended");
    } catch (e) {
      if (signal.aborted) break;
      onState("reconnecting", e.message);
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 15_000);
    }
  }
  onState("stopped");
}
