/**
 * The dashboard's files, served from src/http/dashboard/: `/` is its index.html and
 * `/dashboard/<path>` any file below it. Paths are checked segment by segment (no `..`, no
 * hidden files, no backslashes or NUL), so nothing outside the folder can be named; content types
 * come from the extension. The page itself needs no login: every API call it makes does.
 */
import type { HttpResponse } from "./server.ts";

/** The dashboard folder next to this file. */
export const DASHBOARD_DIR = new URL("./dashboard/", import.meta.url);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  map: "application/json; charset=utf-8",
  woff2: "font/woff2",
};

/** Largest file served. */
const MAX_FILE = 8 * 1024 * 1024;

/** The content type for a file name, by extension. */
export function contentType(name: string): string {
  const dot = name.lastIndexOf(".");
  return TYPES[dot < 0 ? "" : name.slice(dot + 1).toLowerCase()] ?? "application/octet-stream";
}

/**
 * The file a request path names inside the dashboard folder, as a relative path, or null when
 * the path is not a dashboard path or tries to leave the folder.
 */
export function dashboardFile(path: string): string | null {
  if (path === "/" || path === "/index.html") return "index.html";
  if (!path.startsWith("/dashboard/")) return null;
  const rest = path.slice("/dashboard/".length);
  if (rest === "") return "index.html";
  const parts: string[] = [];
  for (const raw of rest.split("/")) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg === "" || seg.startsWith(".") || /[\\/\0:]/.test(seg)) return null;
    parts.push(seg);
  }
  return parts.join("/");
}

/**
 * Everything the page loads comes from the broker itself; `ws: wss:` because the MQTT panel talks
 * to the WebSocket listener on another port. No inline script, no framing (clickjacking).
 */
const CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self'; style-src 'self'; " +
  "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** Answers a dashboard path, or null when `path` is not one. */
export async function serveStatic(
  path: string,
  dir: URL = DASHBOARD_DIR,
): Promise<HttpResponse | null> {
  // Relative links in the page resolve against the folder only with the trailing slash.
  if (path === "/dashboard") {
    return { status: 301, headers: { location: "/dashboard/" }, body: "" };
  }
  const rel = dashboardFile(path);
  if (rel === null) {
    return path.startsWith("/dashboard") ? notFound() : null;
  }
  const url = new URL(rel, dir);
  if (!url.href.startsWith(dir.href)) return notFound();
  try {
    const info = await Deno.stat(url);
    if (!info.isFile || info.size > MAX_FILE) return notFound();
    const body = await Deno.readFile(url);
    return {
      status: 200,
      headers: {
        "content-type": contentType(rel),
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "content-security-policy": CSP,
        "referrer-policy": "no-referrer",
      },
      body,
    };
  } catch {
    return notFound();
  }
}

function notFound(): HttpResponse {
  return {
    status: 404,
    headers: { "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ error: "no such file" }),
  };
}
