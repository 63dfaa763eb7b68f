/**
 * TLS through node:tls rather than Deno.listenTls: Deno.listenTls (Deno 2.x) has no way to
 * request or verify client certificates, while node:tls under Deno does (requestCert, ca,
 * rejectUnauthorized) and also swaps certificates in place (setSecureContext), so a reload
 * keeps every established connection.
 *
 * A "front" is a node:net listener that optionally strips a PROXY protocol header and then
 * optionally terminates TLS, handing each resulting socket on with the real client's address.
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "../log.ts";
import { joinHostPort, ProxyHeaderParser } from "./proxy_protocol.ts";
import { bindFront, type Front, type Guard } from "./listening.ts";
import type { ClientAuth, TlsMaterial } from "./tls_material.ts";

function secureOptions(m: TlsMaterial, clientAuth: ClientAuth): tls.TlsOptions {
  return {
    cert: m.cert,
    key: m.key,
    ...(clientAuth === "none" ? {} : {
      ca: m.ca,
      requestCert: true,
      // "optional" lets a client without a certificate in; one with a bad certificate is
      // refused after the handshake (see below), which node cannot express by itself.
      rejectUnauthorized: clientAuth === "required",
    }),
  };
}

/** Shared, so keeping an idle socket from throwing costs no closure per connection. */
function ignoreError(): void {}

export interface FrontSocket {
  socket: net.Socket;
  /** "ip:port" of the real client (from the PROXY header when there is one). */
  remoteAddress: string;
  /** CN of a verified client certificate. */
  peerCertificateCN?: string;
}

export interface FrontOptions {
  hostname: string;
  port: number;
  /** Listener name for logs: "tls", "wss", "ws". */
  name: string;
  /** Seconds to wait for a PROXY protocol header; undefined = the listener expects none. */
  proxyTimeout?: number;
  tls?: { material: TlsMaterial; clientAuth: ClientAuth };
  /** Seconds a client has to complete its TLS handshake; default 10. */
  handshakeTimeout?: number;
  /** The process-wide socket budget and descriptor watch; absent: no limit (tests). */
  guard?: Guard;
}

/**
 * TLS handshakes a listener runs at once. The runtime does a handshake's crypto (1-2.5 ms of
 * CPU for a full one) on the thread that runs the broker, for every socket that is ready in the
 * same turn: a storm of 64 ClientHellos at once held every connected client's messages for
 * 57 ms at p99 (2,000 msg/s over TLS while 5,000 clients connect). Four at a time: 11.5 ms,
 * and more handshakes per second than without a limit; one or two: no better p99, fewer.
 */
const HANDSHAKES_AT_ONCE = 4;

/**
 * Admits sockets to their TLS handshake a few at a time, in order of arrival: `enter` runs
 * `start` now or when a slot frees: a handshake under way is `done` (succeeded, failed or its
 * socket closed) or has held its slot for SLOT_MS. The slot time keeps clients that connect and
 * then stall (no ClientHello, half of one) from holding the queue for their whole handshake
 * timeout: they only dilute it.
 */
class HandshakeGate {
  #active = new Map<object, ReturnType<typeof setTimeout>>();
  #waiting: { raw: object; start: () => void }[] = [];
  #head = 0;

  constructor(private readonly limit: number) {}

  enter(raw: object, start: () => void): void {
    if (this.#active.size < this.limit) this.#start(raw, start);
    else this.#waiting.push({ raw, start });
  }

  done(raw: object): void {
    const timer = this.#active.get(raw);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#active.delete(raw);
    while (this.#active.size < this.limit && this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#head);
        this.#head = 0;
      }
      this.#start(next.raw, next.start);
    }
  }

  #start(raw: object, start: () => void): void {
    this.#active.set(raw, setTimeout(() => this.done(raw), SLOT_MS));
    start();
  }
}

/** Longest a handshake holds its slot in the HandshakeGate (a full one takes a few ms). */
const SLOT_MS = 50;

/** Seconds a TLS handshake may take when the caller does not say (node's own is 120). */
const DEFAULT_HANDSHAKE_TIMEOUT = 10;

export function listenFront(
  opts: FrontOptions,
  onSocket: (s: FrontSocket) => void,
  log: Logger,
): Front {
  const clientAuth = opts.tls?.clientAuth ?? "none";
  // Real addresses of connections during the TLS handshake. Keyed by the TCP socket, which the
  // TLS socket keeps as `_parent` (Node and Deno alike); once the handshake failed the TLS
  // socket no longer knows its peer, so the TCP peer only works as a key before that.
  const byRaw = new WeakMap<object, string>();
  const byPeer = new Map<string, string>();
  const realAddress = (s: tls.TLSSocket): string | undefined => {
    const parent = (s as unknown as { _parent?: object })._parent;
    const fromParent = parent ? byRaw.get(parent) : undefined;
    const key = `${s.remoteAddress}:${s.remotePort}`;
    const fromPeer = byPeer.get(key);
    byPeer.delete(key);
    return fromParent ?? fromPeer ?? (s.remoteAddress ? key : undefined);
  };
  const handshakeMs = (opts.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT) * 1000;
  // Handshakes under way, by TCP socket: their deadline. node's own handshakeTimeout (120 s by
  // default) let an idle or half-sent ClientHello hold a descriptor for two minutes.
  const handshakes = new WeakMap<object, ReturnType<typeof setTimeout>>();
  const handshakeDone = (s: tls.TLSSocket) => {
    const parent = (s as unknown as { _parent?: object })._parent;
    if (!parent) return;
    clearTimeout(handshakes.get(parent));
    handshakes.delete(parent);
    gate.done(parent);
  };
  // At most HANDSHAKES_AT_ONCE handshakes under way; the other accepted sockets wait, unread,
  // in order (their handshake deadline runs from the accept all the same).
  const gate = new HandshakeGate(HANDSHAKES_AT_ONCE);
  let tlsServer: tls.Server | undefined;
  if (opts.tls) {
    tlsServer = tls.createServer({
      ...secureOptions(opts.tls.material, clientAuth),
      handshakeTimeout: handshakeMs,
    });
    tlsServer.on("secureConnection", (s: tls.TLSSocket) => {
      handshakeDone(s);
      const remoteAddress = realAddress(s) ?? "?";
      let cn: string | undefined;
      const cert = clientAuth === "none" ? undefined : s.getPeerCertificate();
      const presented = cert !== undefined && cert !== null && Object.keys(cert).length > 0;
      if (presented && !s.authorized) {
        log.warn(
          `${opts.name}: refusing ${remoteAddress}: client certificate not trusted ` +
            `(${s.authorizationError ?? "unknown reason"})`,
        );
        s.destroy();
        return;
      }
      if (presented) {
        const subjectCN = cert.subject?.CN;
        cn = Array.isArray(subjectCN) ? subjectCN[0] : subjectCN;
      }
      s.on("error", ignoreError);
      onSocket({ socket: s, remoteAddress, peerCertificateCN: cn });
    });
    tlsServer.on("tlsClientError", (err: Error, s?: tls.TLSSocket) => {
      if (s) handshakeDone(s);
      const who = (s && realAddress(s)) ?? "a client";
      log.info(`${opts.name}: TLS handshake with ${who} failed: ${err.message}`);
    });
  }

  const handOn = (raw: net.Socket, remoteAddress: string) => {
    if (!tlsServer) {
      // The consumer resumes the socket (pipe() does) once it is ready for the bytes.
      raw.on("error", ignoreError);
      onSocket({ socket: raw, remoteAddress });
      return;
    }
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    byRaw.set(raw, remoteAddress);
    byPeer.set(key, remoteAddress);
    raw.once("close", () => {
      byPeer.delete(key);
      clearTimeout(handshakes.get(raw));
      gate.done(raw);
    });
    handshakes.set(
      raw,
      setTimeout(() => {
        log.info(
          `${opts.name}: closing ${remoteAddress}: no TLS handshake within ${handshakeMs} ms`,
        );
        raw.destroy();
      }, handshakeMs),
    );
    // Left paused: the TLS socket reads the TCP handle itself and takes what `raw` buffered
    // (the bytes after a PROXY header: often the ClientHello) with read() on the next tick.
    // A resume() here would make `raw` flow first and emit those bytes to no listener, and the
    // handshake would wait for a ClientHello that is gone.
    const server = tlsServer;
    gate.enter(raw, () => {
      if (!raw.destroyed) server.emit("connection", raw);
      else gate.done(raw);
    });
  };

  const guard = opts.guard;
  const release = () => guard!.budget.release(opts.name);
  const server = net.createServer((raw) => {
    try {
      if (guard) {
        if (!guard.budget.take(opts.name)) {
          raw.on("error", ignoreError);
          raw.destroy();
          guard.alert();
          return;
        }
        raw.once("close", release);
      }
      accepted(raw);
    } catch (err) {
      // Nothing may escape the accept path: it would end the process.
      log.error(`${opts.name}: error accepting a connection: ${(err as Error).message}`);
      raw.destroy();
    }
  });
  server.on("drop", () => guard?.alert());

  const accepted = (raw: net.Socket) => {
    raw.setNoDelay(true);
    const peer = joinHostPort(raw.remoteAddress ?? "?", raw.remotePort ?? 0);
    if (opts.proxyTimeout === undefined) {
      handOn(raw, peer);
      return;
    }
    const parser = new ProxyHeaderParser();
    const fail = (why: string) => {
      log.warn(`${opts.name}: closing connection from ${peer}: ${why}`);
      cleanup();
      raw.destroy();
    };
    const timer = setTimeout(
      () => fail(`no PROXY protocol header within ${opts.proxyTimeout! * 1000} ms`),
      opts.proxyTimeout * 1000,
    );
    const onData = (chunk: Uint8Array) => {
      const r = parser.feed(chunk);
      if (typeof r === "string") {
        fail(r);
        return;
      }
      if (!r.done) return;
      cleanup();
      // Paused until the next consumer is attached: after our "data" listener goes, the socket
      // would otherwise keep flowing and drop bytes on the floor.
      raw.pause();
      if (r.rest.length > 0) raw.unshift(Buffer.from(r.rest));
      handOn(raw, r.header.source ?? peer);
    };
    const onEnd = () => fail("connection closed before the PROXY protocol header");
    const cleanup = () => {
      clearTimeout(timer);
      raw.off("data", onData);
      raw.off("end", onEnd);
    };
    raw.on("data", onData);
    raw.on("end", onEnd);
    raw.on("error", () => cleanup());
  };

  return bindFront(server, opts, log, {
    setMaterial(m) {
      tlsServer?.setSecureContext(secureOptions(m, clientAuth));
    },
  });
}
