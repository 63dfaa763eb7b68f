/**
 * The server side of the WebSocket opening handshake (RFC 6455 section 4.2): an HTTP/1.1
 * request head read from raw bytes, bounded in size, and the answer to it: 101 with the
 * negotiated subprotocol, or a plain HTTP error that the connection closes after.
 */
import { createHash } from "node:crypto";

/** Largest request head accepted; browsers send well under 2 KiB. */
export const MAX_REQUEST_HEAD = 8 * 1024;

/** Section 1.3: the GUID appended to the client's key for Sec-WebSocket-Accept. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A parsed HTTP request head; header names are lower case, repeated headers joined by ", ". */
export interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: Map<string, string>;
}

/** What `RequestHeadParser.feed` found. */
export type HeadResult =
  | { done: false }
  | { done: true; head: RequestHead; rest: Uint8Array }
  | { error: HttpError };

/** An answer that refuses the request. */
export interface HttpError {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const latin1 = new TextDecoder("latin1");

/** Collects bytes until the blank line that ends a request head, then parses it. */
export class RequestHeadParser {
  #buf = new Uint8Array(0);
  readonly #max: number;

  constructor(max = MAX_REQUEST_HEAD) {
    this.#max = max;
  }

  feed(chunk: Uint8Array): HeadResult {
    const prev = this.#buf.length;
    const buf = new Uint8Array(prev + chunk.length);
    buf.set(this.#buf);
    buf.set(chunk, prev);
    this.#buf = buf;
    // The terminator may straddle the previous chunk's end.
    const end = indexOfBlankLine(buf, Math.max(0, prev - 3));
    if (end < 0) {
      if (buf.length > this.#max) {
        return { error: { status: 431, message: "Request header fields too large" } };
      }
      return { done: false };
    }
    if (end > this.#max) {
      return { error: { status: 431, message: "Request header fields too large" } };
    }
    const head = parseHead(latin1.decode(buf.subarray(0, end)));
    if ("error" in head) return head;
    // A copy: `buf` would otherwise stay alive behind the rest for the connection's life.
    return { done: true, head, rest: buf.slice(end + 4) };
  }
}

function indexOfBlankLine(buf: Uint8Array, from: number): number {
  for (let i = from; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function parseHead(text: string): RequestHead | { error: HttpError } {
  const bad = (message: string) => ({ error: { status: 400, message } });
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/(\d\.\d)$/.exec(lines[0]);
  if (!m) return bad("Malformed request line");
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    // Obsolete line folding (a leading space) is refused, as RFC 9112 section 5.2 allows.
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return bad("Malformed header line");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}

/** What the listener asks of an upgrade request. */
export interface UpgradePolicy {
  /** The path MQTT is served at, e.g. "/mqtt". */
  path: string;
  /** Subprotocols in order of preference; a client offering others only is refused. */
  subprotocols: readonly string[];
}

/** The outcome of a handshake: the 101 to send, or why not. */
export type Upgrade =
  | { ok: true; response: Uint8Array; protocol?: string }
  | { ok: false; error: HttpError };

/** Checks an upgrade request against section 4.2.1 and the policy. */
export function answerUpgrade(head: RequestHead, policy: UpgradePolicy): Upgrade {
  const refuse = (status: number, message: string, headers?: Record<string, string>) => ({
    ok: false as const,
    error: { status, message, ...(headers ? { headers } : {}) },
  });
  if (pathOf(head.target) !== policy.path) {
    return refuse(404, `Not found. MQTT over WebSocket is served at ${policy.path}`);
  }
  const h = head.headers;
  if (!listHas(h.get("upgrade"), "websocket")) {
    return refuse(
      426,
      "This is an MQTT over WebSocket endpoint: connect with a WebSocket MQTT client " +
        `(subprotocol ${policy.subprotocols.join(", ")}).`,
      { upgrade: "websocket" },
    );
  }
  // Section 4.2.1 items 1 and 4: a GET over HTTP/1.1 or later, with "Connection: Upgrade".
  if (head.method !== "GET") return refuse(400, "A WebSocket upgrade must be a GET");
  if (head.version < "1.1") return refuse(400, "A WebSocket upgrade needs HTTP/1.1");
  if (!listHas(h.get("connection"), "upgrade")) {
    return refuse(400, "Connection: Upgrade is missing");
  }
  // Section 4.2.2 item 4 (and 4.4): unsupported version -> 426 naming the ones supported.
  if (h.get("sec-websocket-version") !== "13") {
    return refuse(426, "Unsupported WebSocket version; use 13", {
      "sec-websocket-version": "13",
    });
  }
  // Section 4.1: the key is 16 random bytes, base64-encoded: 22 characters and "==".
  const key = h.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key)) {
    return refuse(400, "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  const offered = (h.get("sec-websocket-protocol") ?? "")
    .split(",").map((s) => s.trim()).filter(Boolean);
  const protocol = policy.subprotocols.find((p) => offered.includes(p));
  if (offered.length > 0 && !protocol) {
    return refuse(400, `Unsupported subprotocol; use one of ${policy.subprotocols.join(", ")}`);
  }
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${acceptKey(key)}`,
    ...(protocol ? [`Sec-WebSocket-Protocol: ${protocol}`] : []),
  ];
  return {
    ok: true,
    response: new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"),
    ...(protocol ? { protocol } : {}),
  };
}

/** Section 4.2.2 item 5.4: base64(SHA-1(key + GUID)). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
};

/** A complete HTTP/1.1 response with a text body, after which the server closes. */
export function errorResponse(e: HttpError): Uint8Array {
  const body = new TextEncoder().encode(e.message + "\n");
  const lines = [
    `HTTP/1.1 ${e.status} ${REASONS[e.status] ?? "Error"}`,
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${body.length}`,
    ...Object.entries(e.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
  ];
  // The connection ends after the answer; one that names an upgrade must list it (RFC 9110
  // section 7.8).
  lines.push(e.headers?.upgrade ? "Connection: Upgrade, close" : "Connection: close");
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function pathOf(target: string): string {
  try {
    return new URL(target, "http://localhost").pathname;
  } catch {
    return "";
  }
}

/** Whether a comma-separated header value names `token`, case-insensitively. */
function listHas(value: string | undefined, token: string): boolean {
  return !!value && value.split(",").some((v) => v.trim().toLowerCase() === token);
}
