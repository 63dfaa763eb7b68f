/**
 * MQTT over WebSocket (Deno.serve + Deno.upgradeWebSocket), adapted to ByteConnection.
 * Binary frames carry an arbitrary slicing of the MQTT byte stream (a packet may span frames,
 * a frame may hold several packets); text frames are a protocol error.
 */
import type { Logger } from "../log.ts";
import type { ByteConnection, RawIo, RawSink } from "../broker/ports/connection.ts";
import { rawReadable, rawWritable } from "./streams.ts";
import { joinHostPort } from "./proxy_protocol.ts";
import type { Listening } from "./tcp.ts";

export const MQTT_SUBPROTOCOLS = ["mqtt", "mqttv3.1", "mqttv3.1.1"];

/** Above this many unsent bytes a write waits, so a slow browser exerts backpressure. */
const HIGH_WATER = 256 * 1024;

/**
 * A WebSocket cannot be paused from Deno, so a client that outpaces the broker would grow the
 * read queue without bound; past this many queued bytes (at least) the connection is closed.
 */
export function readLimit(maxPacketSize: number): number {
  return Math.max(2 * maxPacketSize, 64 * 1024);
}

export function fromWebSocket(
  socket: WebSocket,
  remoteAddress: string,
  transport: string,
  log: Logger,
  opts: { maxQueuedBytes?: number; peerCertificateCN?: string } = {},
): ByteConnection {
  return new WebSocketConnection(socket, remoteAddress, transport, log, opts);
}

/**
 * Frames are pushed straight into the core (the raw path): WHATWG streams on top of a
 * WebSocket, with a read always pending, cost several KiB per idle connection. Streams are only
 * built if a wrapper asks for them.
 */
class WebSocketConnection implements ByteConnection, RawIo {
  readonly #socket: WebSocket;
  readonly remoteAddress: string;
  readonly transport: string;
  readonly peerCertificateCN?: string;
  readonly #log: Logger;
  readonly #limit: number;
  #sink: RawSink | null = null;
  #paused = false;
  /** Frames not yet delivered: before start, while paused. */
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #ended = false;
  #endError: Error | undefined;
  #endReported = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  constructor(
    socket: WebSocket,
    remoteAddress: string,
    transport: string,
    log: Logger,
    opts: { maxQueuedBytes?: number; peerCertificateCN?: string },
  ) {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    this.transport = transport;
    if (opts.peerCertificateCN !== undefined) this.peerCertificateCN = opts.peerCertificateCN;
    this.#log = log;
    this.#limit = opts.maxQueuedBytes ?? readLimit(1024 * 1024);
    socket.binaryType = "arraybuffer";
    // Listening from the start: frames that come before the broker starts reading are kept.
    socket.onmessage = (e) => this.#onMessage(e);
    socket.onclose = () => this.#finish();
    socket.onerror = () => {};
  }

  get raw(): RawIo {
    return this;
  }

  #onMessage(e: MessageEvent): void {
    if (this.#ended) return;
    if (typeof e.data === "string") {
      this.#log.warn(
        `websocket client ${this.remoteAddress} sent a text frame; closing (MQTT needs binary)`,
      );
      this.#closeWith(1003, "MQTT over WebSocket uses binary frames");
      this.#finish();
      return;
    }
    const chunk = new Uint8Array(e.data as ArrayBuffer);
    if (this.#sink && !this.#paused && this.#queue.length === 0) {
      this.#sink.onData(chunk);
      return;
    }
    // A WebSocket cannot be paused from Deno: what comes meanwhile waits here, up to the limit.
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    if (this.#queuedBytes > this.#limit) {
      this.#log.warn(
        `websocket client ${this.remoteAddress} sent more than ${this.#limit} bytes the broker ` +
          `has not read yet; closing`,
      );
      this.#closeWith(1009, "too much unread data");
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#finish(new Error("websocket read queue limit exceeded"));
    }
  }

  #finish(err?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endError = err;
    this.#drain();
  }

  /** Delivers queued frames while not paused, then the end once everything is out. */
  #drain(): void {
    const sink = this.#sink;
    if (!sink) return;
    while (!this.#paused && this.#queue.length > 0) {
      const chunk = this.#queue.shift()!;
      this.#queuedBytes -= chunk.byteLength;
      sink.onData(chunk);
    }
    if (this.#ended && this.#queue.length === 0 && !this.#endReported) {
      this.#endReported = true;
      sink.onEnd(this.#endError);
    }
  }

  start(sink: RawSink): void {
    if (this.#sink) throw new Error("connection already started");
    this.#sink = sink;
    this.#drain();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#drain();
  }

  write(bytes: Uint8Array): Promise<void> | undefined {
    const socket = this.#socket;
    if (socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("websocket is not open"));
    }
    socket.send(bytes);
    if (socket.bufferedAmount <= HIGH_WATER) return undefined;
    // Deno has no drain event for WebSockets: poll until the browser has taken enough.
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (socket.readyState !== WebSocket.OPEN) reject(new Error("websocket closed"));
        else if (socket.bufferedAmount > HIGH_WATER) setTimeout(check, 5);
        else resolve();
      };
      setTimeout(check, 5);
    });
  }

  close(): void {
    this.#closeWith();
  }

  #closeWith(code?: number, reason?: string): void {
    try {
      this.#socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  // ------------------------------------------------------------------ streams, for wrappers

  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= rawReadable(this, () => this.close());
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= rawWritable(this, () => this.close());
  }
}

/** Who a request really comes from when the TCP peer is not the client. */
export interface PeerInfo {
  remoteAddress: string;
  peerCertificateCN?: string;
}

export interface WebSocketListenOptions {
  hostname: string;
  port: number;
  path: string;
  tls?: { cert: string; key: string };
  /** "ws" or "wss"; defaults from `tls`. */
  transport?: string;
  maxPacketSize: number;
  /** Peers whose X-Forwarded-For / X-Real-IP headers name the real client (IPs or IPv4 CIDRs). */
  trustedProxies?: readonly string[];
  /**
   * Set when the server only listens on loopback behind an in-process front (TLS or PROXY
   * protocol): maps the loopback peer to the real client, and requests it does not know (someone
   * else connecting to the internal port) are refused.
   */
  resolvePeer?: (addr: Deno.NetAddr) => PeerInfo | undefined;
}

export function listenWebSocket(
  opts: WebSocketListenOptions,
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Listening {
  const transport = opts.transport ?? (opts.tls ? "wss" : "ws");
  const trusted = (opts.trustedProxies ?? []).map(parseTrusted);
  const limit = readLimit(opts.maxPacketSize);
  const server = Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    onListen: () => {},
    onError: (err) => {
      log.warn(`${transport} request failed: ${(err as Error)?.message ?? err}`);
      return new Response("internal error\n", { status: 500 });
    },
    ...(opts.tls ?? {}),
  }, (req, info) => {
    const addr = info.remoteAddr as Deno.NetAddr;
    let peer: PeerInfo | undefined = { remoteAddress: joinHostPort(addr.hostname, addr.port) };
    if (opts.resolvePeer) {
      peer = opts.resolvePeer(addr);
      if (!peer) return new Response("Forbidden\n", { status: 403 });
    }
    const url = new URL(req.url);
    if (url.pathname !== opts.path) {
      return new Response(`Not found. MQTT over WebSocket is served at ${opts.path}\n`, {
        status: 404,
      });
    }
    if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
      return new Response(
        "This is an MQTT over WebSocket endpoint: connect with a WebSocket MQTT client " +
          `(subprotocol ${MQTT_SUBPROTOCOLS.join(", ")}).\n`,
        { status: 426, headers: { upgrade: "websocket", connection: "Upgrade" } },
      );
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "")
      .split(",").map((s) => s.trim()).filter(Boolean);
    const chosen = MQTT_SUBPROTOCOLS.find((p) => offered.includes(p));
    if (offered.length > 0 && !chosen) {
      return new Response(`Unsupported subprotocol; use one of ${MQTT_SUBPROTOCOLS.join(", ")}\n`, {
        status: 400,
      });
    }
    let remoteAddress = peer.remoteAddress;
    if (trusted.length > 0) {
      const forwarded = forwardedClient(req.headers, hostOnly(remoteAddress), trusted);
      if (forwarded) remoteAddress = joinHostPort(forwarded, portOnly(remoteAddress));
    }
    let upgraded;
    try {
      upgraded = Deno.upgradeWebSocket(req, {
        ...(chosen ? { protocol: chosen } : {}),
        // Keep-alive is MQTT's job; an extra idle timeout would cut quiet, healthy clients.
        idleTimeout: 0,
      });
    } catch (err) {
      return new Response(`Bad WebSocket upgrade: ${(err as Error).message}\n`, { status: 400 });
    }
    const { socket, response } = upgraded;
    socket.onopen = () => {
      onConnection(
        fromWebSocket(socket, remoteAddress, transport, log, {
          maxQueuedBytes: limit,
          peerCertificateCN: peer.peerCertificateCN,
        }),
      );
    };
    return response;
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    address: joinHostPort(addr.hostname, addr.port),
    port: addr.port,
    close() {
      server.shutdown().catch(() => {});
    },
  };
}

// --- X-Forwarded-For -----------------------------------------------------------------------------

type Trusted = (ip: string) => boolean;

function parseTrusted(spec: string): Trusted {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(spec);
  if (m) {
    const bits = Number(m[2]);
    const base = ipv4ToInt(m[1]);
    if (base === undefined || bits > 32) throw new Error(`invalid trusted proxy ${spec}`);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ip) => {
      const n = ipv4ToInt(normalizeIp(ip));
      return n !== undefined && ((n & mask) >>> 0) === ((base & mask) >>> 0);
    };
  }
  const want = normalizeIp(spec);
  return (ip) => normalizeIp(ip) === want;
}

function ipv4ToInt(ip: string): number | undefined {
  const p = ip.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

function normalizeIp(ip: string): string {
  const s = ip.trim().replace(/^\[|\]$/g, "").toLowerCase();
  return s.startsWith("::ffff:") && s.includes(".") ? s.slice(7) : s;
}

/**
 * The client as seen by the nearest trusted proxy: X-Forwarded-For read from the right, skipping
 * the trusted proxies themselves (anything further left could be forged by the client), else
 * X-Real-IP. Only consulted when the TCP peer is a trusted proxy.
 */
function forwardedClient(headers: Headers, peerIp: string, trusted: Trusted[]): string | undefined {
  const isTrusted = (ip: string) => trusted.some((t) => t(ip));
  if (!isTrusted(peerIp)) return undefined;
  const xff = headers.get("x-forwarded-for");
  if (xff) {
    const hops = xff.split(",").map((s) => normalizeIp(s)).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!isTrusted(hops[i]) || i === 0) return validIp(hops[i]);
    }
  }
  const real = headers.get("x-real-ip");
  return real ? validIp(normalizeIp(real)) : undefined;
}

function validIp(s: string): string | undefined {
  if (ipv4ToInt(s) !== undefined) return s;
  return /^[0-9a-f:.]+$/.test(s) && s.includes(":") ? s : undefined;
}

function hostOnly(address: string): string {
  const i = address.lastIndexOf(":");
  return i > 0 ? address.slice(0, i) : address;
}

function portOnly(address: string): string {
  const i = address.lastIndexOf(":");
  return i > 0 ? address.slice(i + 1) : "0";
}
