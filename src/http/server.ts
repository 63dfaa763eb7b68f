/**
 * A small HTTP/1.1 server on one raw connection of the broker's guarded TCP listener (sockets
 * counted from the first byte, like the MQTT listeners'): request heads bounded in size, bodies
 * read by Content-Length up to a limit (413 beyond it), a timeout for each whole request (408),
 * keep-alive for a bounded number of requests, and long-lived event streams (SSE). Handlers get a
 * parsed request and return a response; they never see the socket.
 */
import type { ByteConnection, RawIo } from "../broker/ports/connection.ts";
import type { Logger } from "../log.ts";
import { type RequestHead, RequestHeadParser } from "../transport/ws_handshake.ts";

/** A request as handlers see it. */
export interface HttpRequest {
  method: string;
  /** The decoded path, e.g. "/api/v1/clients/a b" stays "/api/v1/clients/a%20b" (raw). */
  path: string;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Map<string, string>;
  body: Uint8Array;
  /** "ip:port" of the peer. */
  remoteAddress: string;
}

/** An open event stream: text is written as it comes, until either side closes. */
export interface StreamOut {
  /** False once the connection is gone. */
  write(text: string): boolean;
  /** Called once when the connection ends. */
  onClose(fn: () => void): void;
  close(): void;
}

/** A complete answer, or the head of a stream that `stream` then feeds. */
export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  stream?: (out: StreamOut) => void;
  /** What an admin action did, for its audit line (e.g. the topic published to). */
  audit?: string;
}

/** Turns a request into a response; a throw becomes a 500 without details. */
export type HttpHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

/** Bounds of one connection. */
export interface HttpLimits {
  /** Largest request body in bytes (413 beyond it). */
  maxBody: number;
  /** Milliseconds a whole request (head and body) may take to arrive, idle time included. */
  requestTimeoutMs: number;
  /** Requests served on one connection before it is closed. */
  maxRequests: number;
}

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  301: "Moved Permanently",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const encoder = new TextEncoder();

/** The bytes of a response head. */
function headBytes(
  status: number,
  headers: Record<string, string>,
  close: boolean,
  length?: number,
): Uint8Array {
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
  for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
  if (length !== undefined) text += `content-length: ${length}\r\n`;
  text += `connection: ${close ? "close" : "keep-alive"}\r\n\r\n`;
  return encoder.encode(text);
}

/** A JSON error answer: `{"error": message}`. */
export function errorBody(status: number, message: string): HttpResponse {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ error: message }),
  };
}

/** Serves requests on `conn` until it closes, the limits end it, or an error does. */
export function serveHttp(
  conn: ByteConnection & { readonly raw: RawIo },
  limits: HttpLimits,
  handler: HttpHandler,
  log: Logger,
): void {
  new HttpConnection(conn, limits, handler, log).start();
}

class HttpConnection {
  #parser = new RequestHeadParser();
  #head: RequestHead | null = null;
  #need = 0;
  #body: Uint8Array[] = [];
  #have = 0;
  /** Bytes that arrived while a request was being answered. */
  #pending: Uint8Array[] = [];
  #busy = false;
  #closed = false;
  #served = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closeHooks: (() => void)[] = [];
  /** Whether a byte of the next request arrived since the timer was armed. */
  #started = false;

  constructor(
    readonly conn: ByteConnection & { readonly raw: RawIo },
    readonly limits: HttpLimits,
    readonly handler: HttpHandler,
    readonly log: Logger,
  ) {}

  start(): void {
    this.#arm();
    this.conn.raw.start({
      onData: (chunk) => this.#data(chunk),
      onEnd: () => this.#ended(),
    });
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#started = false;
    this.#timer = setTimeout(() => {
      // An idle keep-alive connection just ends; a request that stalled half-way gets 408.
      if (!this.#started && this.#served > 0) this.#close();
      else this.#fail(408, `no complete request within ${this.limits.requestTimeoutMs} ms`);
    }, this.limits.requestTimeoutMs);
  }

  #data(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#started = true;
    if (this.#busy) {
      // Pipelined bytes wait for the answer in progress; bounded like one request.
      this.#pending.push(chunk);
      const held = this.#pending.reduce((n, c) => n + c.byteLength, 0);
      if (held > this.limits.maxBody + 16 * 1024) this.#fail(413, "too much pipelined input");
      return;
    }
    if (this.#head === null) {
      const r = this.#parser.feed(chunk);
      if ("error" in r) return this.#fail(r.error.status, r.error.message);
      if (!r.done) return;
      const head = r.head;
      if (head.headers.has("transfer-encoding")) {
        return this.#fail(411, "chunked request bodies are not supported; send Content-Length");
      }
      const len = head.headers.get("content-length");
      const need = len === undefined ? 0 : /^\d{1,15}$/.test(len) ? Number(len) : NaN;
      if (!Number.isFinite(need)) return this.#fail(400, "invalid Content-Length");
      if (need > this.limits.maxBody) {
        return this.#fail(413, `request body larger than ${this.limits.maxBody} bytes`);
      }
      this.#head = head;
      this.#need = need;
      this.#body = [];
      this.#have = 0;
      chunk = r.rest;
    }
    if (chunk.byteLength > 0) {
      const room = this.#need - this.#have;
      if (chunk.byteLength > room) {
        this.#pending.push(chunk.subarray(room));
        chunk = chunk.subarray(0, room);
      }
      if (chunk.byteLength > 0) {
        this.#body.push(chunk);
        this.#have += chunk.byteLength;
      }
    }
    if (this.#have >= this.#need) this.#dispatch();
  }

  #dispatch(): void {
    const head = this.#head!;
    this.#head = null;
    this.#parser = new RequestHeadParser();
    const body = concat(this.#body, this.#have);
    this.#body = [];
    this.#busy = true;
    this.#served++;
    clearTimeout(this.#timer);
    const q = head.target.indexOf("?");
    const req: HttpRequest = {
      method: head.method,
      path: q < 0 ? head.target : head.target.slice(0, q),
      query: new URLSearchParams(q < 0 ? "" : head.target.slice(q + 1)),
      headers: head.headers,
      body,
      remoteAddress: this.conn.remoteAddress,
    };
    const wantsClose = head.version === "1.0" ||
      /(^|,)\s*close\s*(,|$)/i.test(head.headers.get("connection") ?? "") ||
      this.#served >= this.limits.maxRequests;
    let answer: Promise<HttpResponse>;
    try {
      answer = Promise.resolve(this.handler(req));
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.catch((err) => {
      this.log.error(`http: ${req.method} ${req.path} failed: ${(err as Error)?.stack ?? err}`);
      return errorBody(500, "internal error");
    }).then((res) => this.#respond(req, res, wantsClose));
  }

  #respond(req: HttpRequest, res: HttpResponse, close: boolean): void {
    if (this.#closed) return;
    const headers = res.headers ?? {};
    if (res.stream) {
      this.#write(headBytes(res.status, { ...headers, "cache-control": "no-store" }, true));
      res.stream({
        write: (text) => {
          if (this.#closed) return false;
          this.#write(encoder.encode(text));
          return true;
        },
        onClose: (fn) => void this.#closeHooks.push(fn),
        close: () => this.#close(),
      });
      return;
    }
    const body = typeof res.body === "string"
      ? encoder.encode(res.body)
      : res.body ?? new Uint8Array();
    const head = headBytes(res.status, headers, close, body.byteLength);
    const out = req.method === "HEAD"
      ? head
      : concat([head, body], head.byteLength + body.byteLength);
    const written = this.#write(out);
    if (close) {
      this.#closed = true;
      clearTimeout(this.#timer);
      if (written) written.then(() => this.#close(), () => this.#close());
      else this.#close();
      return;
    }
    this.#busy = false;
    this.#arm();
    const pending = this.#pending;
    this.#pending = [];
    for (const c of pending) this.#data(c);
  }

  #write(bytes: Uint8Array): Promise<void> | undefined {
    try {
      const w = this.conn.raw.write(bytes);
      w?.catch(() => this.#close());
      return w;
    } catch {
      this.#close();
      return undefined;
    }
  }

  /** Answers an error and closes: the connection's framing cannot be trusted after it. */
  #fail(status: number, message: string): void {
    if (this.#closed) return;
    // An answer is already in progress (or streaming): the connection just ends.
    if (this.#busy) return this.#close();
    this.#busy = true;
    this.#respond(NO_REQUEST, errorBody(status, message), true);
  }

  #ended(): void {
    this.#close();
  }

  #close(): void {
    clearTimeout(this.#timer);
    const first = !this.#closed || this.#closeHooks.length > 0;
    this.#closed = true;
    this.conn.raw.pause();
    this.conn.close();
    if (!first) return;
    const hooks = this.#closeHooks;
    this.#closeHooks = [];
    for (const h of hooks) {
      try {
        h();
      } catch { /* a stream's own cleanup must not break the close */ }
    }
  }
}

/** Stands in for a request that could not be parsed. */
const NO_REQUEST: HttpRequest = {
  method: "GET",
  path: "",
  query: new URLSearchParams(),
  headers: new Map(),
  body: new Uint8Array(),
  remoteAddress: "",
};

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
