/** Starts the listeners the settings name, feeds their connections to the broker, reloads TLS. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import type { Front, Guard } from "./listening.ts";
import { tcpListener } from "./listener_tcp.ts";
import { tlsListener } from "./listener_tls.ts";
import { wsListener } from "./listener_ws.ts";
import { wssListener } from "./listener_wss.ts";
import type { ListenerSettings } from "./settings.ts";
import { fileStamp, loadTlsMaterial, type TlsMaterial } from "./tls_material.ts";

/** The running listeners. */
export interface Listeners {
  all: Front[];
  /** Re-reads certificates (SIGHUP). */
  reload(): void;
  close(): void;
  /** Resolves when every listener is bound; rejects with the first bind error. */
  ready: Promise<void>;
}

/**
 * Starts every listener in `settings` (see listenerSettings() for the configuration's); with a
 * `guard`, every socket they accept counts against its budget.
 */
export function startListeners(
  settings: ListenerSettings,
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
  guard?: Guard,
): Listeners {
  const certs = settings.certificates;
  let material: TlsMaterial | undefined;
  if (certs) {
    try {
      material = loadTlsMaterial(certs.files);
    } catch (err) {
      const hint = certs.defaults
        ? " (run `deno task gen-dev-cert` for a development certificate, or set ssl-cert-file)"
        : "";
      throw new Error(`${(err as Error).message}${hint}`);
    }
  }

  const fronts: Front[] = [];
  const bind = (what: string, host: string, start: () => Front) => {
    const front = start();
    fronts.push(front);
    // Named here, where it is known which listener failed; `ready` rejects and the caller stops.
    front.ready.catch((err) => {
      log.error(`cannot listen: ${what} on ${host}: ${(err as Error).message}`);
    });
  };
  try {
    const { tcp, ws, tls, wss } = settings;
    if (tcp) bind("tcp", tcp.host, () => tcpListener(tcp, onConnection, log, guard));
    if (ws) bind("ws", ws.host, () => wsListener(ws, onConnection, log, guard));
    if (tls && material) {
      const m = material;
      bind("tls", tls.host, () => tlsListener(tls, m, onConnection, log, guard));
      if (wss) bind("wss", wss.host, () => wssListener(wss, m, onConnection, log, guard));
      log.info(
        `TLS certificate ${certs!.files.certFile}: ${m.summary}; client certificates: ` +
          tls.clientAuth,
      );
    }
  } catch (err) {
    for (const f of fronts) f.close();
    throw err;
  }

  let stamp = certs ? fileStamp(certs.files) : "";
  const reloadTls = (why: string) => {
    if (!certs) return;
    stamp = fileStamp(certs.files);
    try {
      const m = loadTlsMaterial(certs.files);
      for (const f of fronts) f.setMaterial(m);
      log.info(`reloaded TLS certificate ${certs.files.certFile} (${m.summary}) ${why}`);
    } catch (err) {
      log.error(
        `TLS reload failed, keeping the previous certificate: ${(err as Error).message}`,
      );
    }
  };
  let watch: ReturnType<typeof setInterval> | undefined;
  if (certs && certs.watchInterval > 0) {
    watch = setInterval(() => {
      if (fileStamp(certs.files) !== stamp) reloadTls("after a file change");
    }, certs.watchInterval * 1000);
    // The watch alone must not keep the process alive after shutdown.
    Deno.unrefTimer(watch);
  }

  const ready = Promise.all(fronts.map((f) => f.ready)).then(() => {});
  ready.catch(() => {});
  return {
    all: fronts,
    ready,
    reload() {
      reloadTls("on SIGHUP");
    },
    close() {
      clearInterval(watch);
      for (const f of fronts) f.close();
    },
  };
}
