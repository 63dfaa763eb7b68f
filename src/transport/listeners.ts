/** Starts every listener the configuration enables and feeds their connections to the broker. */
import net from "node:net";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { withConnectUsername } from "./cert_username.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import { withStreams } from "./streams.ts";
import { fromNodeSocket } from "./node_socket.ts";
import { type Listening, listenTcp } from "./tcp.ts";
import {
  fileStamp,
  type Front,
  type FrontSocket,
  listenFront,
  loadTlsMaterial,
  type TlsFiles,
  type TlsMaterial,
} from "./tls.ts";
import { listenWebSocket, type PeerInfo } from "./websocket.ts";

export interface Listeners {
  all: Listening[];
  /** Re-reads certificates (SIGHUP). */
  reload(): void;
  close(): void;
  /**
   * Resolves when every listener is bound; rejects with the first bind error. The node-based
   * listeners (TLS, WSS, PROXY-protocol WebSocket) bind asynchronously.
   */
  ready: Promise<void>;
}

export const DEFAULT_CERT_FILE = "keystore/server.pem";
export const DEFAULT_KEY_FILE = "keystore/server.key";
const PROXY_LISTENERS = ["tcp", "tls", "ws", "wss"];

/** Whether the configuration turns the TLS and WSS listeners on. */
export function tlsEnabled(config: Config): boolean {
  return config.sslEnabled || config.sslCertFile !== "";
}

export function startListeners(
  config: Config,
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Listeners {
  const host = config.host || "0.0.0.0";
  const proxied = new Set(config.proxyProtocol.map((s) => s.toLowerCase()));
  for (const name of proxied) {
    if (!PROXY_LISTENERS.includes(name)) {
      throw new Error(
        `mqttwk.broker.proxy-protocol: unknown listener "${name}"; use ${
          PROXY_LISTENERS.join(", ")
        }`,
      );
    }
  }
  const proxyTimeout = (name: string) =>
    proxied.has(name) ? config.proxyProtocolTimeout : undefined;
  const viaProxy = (name: string) => (proxied.has(name) ? " (PROXY protocol)" : "");

  const tlsOn = tlsEnabled(config);
  const files: TlsFiles = {
    certFile: config.sslCertFile || DEFAULT_CERT_FILE,
    keyFile: config.sslKeyFile || DEFAULT_KEY_FILE,
    caFile: config.sslCaFile || undefined,
    clientAuth: config.sslClientAuth,
    passphrase: config.sslPassword || undefined,
  };
  let material: TlsMaterial | undefined;
  if (tlsOn) {
    try {
      material = loadTlsMaterial(files);
    } catch (err) {
      const hint = config.sslCertFile
        ? ""
        : " (run `deno task gen-dev-cert` for a development certificate, or set ssl-cert-file)";
      throw new Error(`${(err as Error).message}${hint}`);
    }
  }

  /** Makes a verified certificate's CN the username, when configured. */
  const identify = (conn: ByteConnection): ByteConnection => {
    const cn = conn.peerCertificateCN;
    if (cn === undefined) return conn;
    if (!config.sslCnAsUsername) {
      log.debug(`${conn.transport} client ${conn.remoteAddress} presented certificate CN=${cn}`);
      return conn;
    }
    log.info(
      `${conn.transport} client ${conn.remoteAddress} presented certificate CN=${cn}; ` +
        `using it as the username`,
    );
    return withStreams(conn, {
      readable: withConnectUsername(conn.readable, cn, config.maxPacketSize),
      writable: conn.writable,
    });
  };
  const accept = (conn: ByteConnection) => onConnection(identify(conn));

  const all: Listening[] = [];
  const fronts: Front[] = [];
  const waits: Promise<void>[] = [];
  /** Node-based listeners log once bound; a bind failure stops the broker like a sync one. */
  const announce = (front: Front, what: string, suffix = "") => {
    fronts.push(front);
    all.push(front);
    waits.push(front.ready);
    front.ready.then(
      () => log.info(`listening ${what} ${front.address}${suffix}`),
      (err) => {
        log.error(`cannot listen: ${what} on ${host}: ${(err as Error).message}; shutting down`);
        // startListeners is synchronous for main.ts; SIGTERM takes the normal shutdown path.
        Deno.kill(Deno.pid, "SIGTERM");
      },
    );
  };

  /**
   * WebSocket behind an in-process node front (TLS or PROXY protocol): Deno.upgradeWebSocket
   * only takes plain TCP connections, so the front pipes each connection to a WebSocket server
   * on a loopback port, which learns the real client from the front by the pipe's source port.
   */
  const frontedWebSocket = (name: "ws" | "wss", port: number) => {
    const peers = new Map<number, PeerInfo>();
    const inner = listenWebSocket(
      {
        hostname: "127.0.0.1",
        port: 0,
        path: config.websocketPath,
        transport: name,
        maxPacketSize: config.maxPacketSize,
        trustedProxies: config.websocketTrustedProxies,
        resolvePeer: (addr) => peers.get(addr.port),
      },
      accept,
      log,
    );
    all.push(inner);
    const front = listenFront(
      {
        hostname: host,
        port,
        name,
        proxyTimeout: proxyTimeout(name),
        tls: name === "wss" && material
          ? { material, clientAuth: config.sslClientAuth }
          : undefined,
      },
      (s: FrontSocket) => bridge(s, inner.port, peers),
      log,
    );
    announce(front, name, `${config.websocketPath}${viaProxy(name)}`);
  };

  try {
    if (config.tcpEnabled) {
      const tcp = listenTcp(
        { hostname: host, port: config.port, proxyTimeout: proxyTimeout("tcp") },
        accept,
        log,
      );
      announce(tcp, "tcp", viaProxy("tcp"));
    }
    if (config.websocketEnabled) {
      if (proxied.has("ws")) frontedWebSocket("ws", config.websocketPort);
      else {
        const ws = listenWebSocket(
          {
            hostname: host,
            port: config.websocketPort,
            path: config.websocketPath,
            maxPacketSize: config.maxPacketSize,
            trustedProxies: config.websocketTrustedProxies,
          },
          accept,
          log,
        );
        all.push(ws);
        log.info(`listening ws ${ws.address}${config.websocketPath}`);
      }
    }
    if (material) {
      const front = listenFront({
        hostname: host,
        port: config.sslPort,
        name: "tls",
        proxyTimeout: proxyTimeout("tls"),
        tls: { material, clientAuth: config.sslClientAuth },
      }, (s) => {
        s.socket.setNoDelay(true);
        accept(
          fromNodeSocket(s.socket, s.remoteAddress, "tls", {
            ...(s.peerCertificateCN !== undefined
              ? { peerCertificateCN: s.peerCertificateCN }
              : {}),
          }),
        );
      }, log);
      announce(front, "tls", viaProxy("tls"));
      if (config.wssEnabled) frontedWebSocket("wss", config.wssPort);
      log.info(
        `TLS certificate ${files.certFile}: ${material.summary}; client certificates: ` +
          config.sslClientAuth,
      );
    }
  } catch (err) {
    for (const l of all) l.close();
    throw err;
  }

  let stamp = tlsOn ? fileStamp(files) : "";
  const reloadTls = (why: string) => {
    if (!tlsOn) return;
    stamp = fileStamp(files);
    try {
      const m = loadTlsMaterial(files);
      for (const f of fronts) f.setMaterial(m);
      log.info(`reloaded TLS certificate ${files.certFile} (${m.summary}) ${why}`);
    } catch (err) {
      log.error(
        `TLS reload failed, keeping the previous certificate: ${(err as Error).message}`,
      );
    }
  };
  let watch: ReturnType<typeof setInterval> | undefined;
  if (tlsOn && config.sslWatchInterval > 0) {
    watch = setInterval(() => {
      if (fileStamp(files) !== stamp) reloadTls("after a file change");
    }, config.sslWatchInterval * 1000);
    // The watch alone must not keep the process alive after shutdown.
    Deno.unrefTimer(watch);
  }

  const ready = Promise.all(waits).then(() => {});
  ready.catch(() => {});
  return {
    all,
    ready,
    reload() {
      reloadTls("on SIGHUP");
    },
    close() {
      clearInterval(watch);
      for (const l of all) l.close();
    },
  };
}

/** Pipes a front connection to the loopback WebSocket server, both ways, with backpressure. */
function bridge(s: FrontSocket, innerPort: number, peers: Map<number, PeerInfo>): void {
  const inner = net.connect({ host: "127.0.0.1", port: innerPort });
  let localPort: number | undefined;
  const done = () => {
    if (localPort !== undefined) peers.delete(localPort);
    s.socket.destroy();
    inner.destroy();
  };
  inner.setNoDelay(true);
  inner.once("connect", () => {
    localPort = inner.localPort;
    if (localPort !== undefined) {
      peers.set(localPort, {
        remoteAddress: s.remoteAddress,
        ...(s.peerCertificateCN !== undefined ? { peerCertificateCN: s.peerCertificateCN } : {}),
      });
    }
    s.socket.pipe(inner);
    inner.pipe(s.socket);
  });
  s.socket.on("close", done);
  inner.on("close", done);
  s.socket.on("error", () => {});
  inner.on("error", () => {});
}
