/** What every listener hands back, and the node:net binding they share. */
import type net from "node:net";
import type { Logger } from "../log.ts";
import { joinHostPort } from "./proxy_protocol.ts";
import type { TlsMaterial } from "./tls_material.ts";
import type { Rearmable } from "./descriptor_watch.ts";
import type { SocketBudget } from "./socket_budget.ts";

/** A bound listener. */
export interface Listening {
  /** The bound address, e.g. "0.0.0.0:8885" (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  close(): void;
}

/** A bound listener that a descriptor watch can restart. */
export interface Front extends Listening, Rearmable {
  /** Resolves once bound (address and port are valid from then on). */
  readonly ready: Promise<void>;
  /** Installs new certificates for new handshakes; established connections are untouched. */
  setMaterial(m: TlsMaterial): void;
}

/** node:net's default accept backlog, used again when a listener is restarted. */
const BACKLOG = 511;

/**
 * Binds a node:net server as a Front: bind errors reject `ready`, later ones are logged.
 * `onBound` runs once bound, before anything is accepted; an error it returns fails `ready`.
 */
export function bindFront(
  server: net.Server,
  opts: { hostname: string; port: number; name: string },
  log: Logger,
  hooks: { onBound?: () => Error | undefined; setMaterial?: (m: TlsMaterial) => void } = {},
): Front {
  let address = "";
  let port = 0;
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
  server.once("error", reject);
  server.listen({ host: opts.hostname, port: opts.port }, () => {
    server.off("error", reject);
    server.on("error", (err: Error) => log.error(`${opts.name} listener error: ${err.message}`));
    const a = server.address() as net.AddressInfo;
    address = joinHostPort(a.address, a.port);
    port = a.port;
    const failed = hooks.onBound?.();
    if (failed) {
      server.close();
      reject(failed);
    } else resolve();
  });
  ready.catch(() => {});
  let closed = false;
  return {
    get address() {
      return address;
    },
    get port() {
      return port;
    },
    ready,
    setMaterial(m) {
      hooks.setMaterial?.(m);
    },
    rearm() {
      if (closed || !port) return;
      // The handle's accept loop ended on EMFILE; listening again starts a new one.
      const handle = (server as unknown as { _handle?: { listen?: (n: number) => number } })
        ._handle;
      const err = handle?.listen?.(BACKLOG);
      if (typeof err === "number" && err < 0) {
        log.error(`${opts.name}: cannot restart accepting (error ${err})`);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      server.close();
    },
  };
}

/** Common to every listener's settings. */
export interface ListenerBase {
  /** Interface to bind, e.g. "0.0.0.0". */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Seconds a client has to send its PROXY protocol header; absent: no header expected. */
  proxyTimeout?: number;
}

/** What every listener shares to protect the process: the socket budget, the watch. */
export interface Guard {
  /** Counts every accepted socket, all listeners together; sheds past its limit. */
  budget: SocketBudget;
  /**
   * Told when a listener may have stopped accepting (an accept failed, or a socket was shed),
   * so the listeners are restarted once descriptors are free.
   */
  alert(): void;
}

/** The start-up line's suffix for a listener behind a PROXY protocol proxy. */
export function proxySuffix(s: ListenerBase): string {
  return s.proxyTimeout === undefined ? "" : " (PROXY protocol)";
}

/** Logs `listening ...` once the listener is bound (a bind failure is the caller's to report). */
export function announce(front: Front, line: () => string, log: Logger): Front {
  front.ready.then(() => log.info(line()), () => {});
  return front;
}
