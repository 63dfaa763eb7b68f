/** Starts every listener the configuration enables and feeds their connections to the broker. */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import type { ByteConnection } from "./connection.ts";
import { type Listening, listenTcp } from "./tcp.ts";
import { listenWebSocket } from "./websocket.ts";

export interface Listeners {
  all: Listening[];
  /** Re-reads certificates (SIGHUP). */
  reload(): void;
  close(): void;
}

export function startListeners(
  config: Config,
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Listeners {
  const all: Listening[] = [];
  const host = config.host || "0.0.0.0";
  try {
    const tcp = listenTcp({ hostname: host, port: config.port }, onConnection, log);
    all.push(tcp);
    log.info(`listening tcp ${tcp.address}`);
    if (config.websocketEnabled) {
      const ws = listenWebSocket(
        { hostname: host, port: config.websocketPort, path: config.websocketPath },
        onConnection,
        log,
      );
      all.push(ws);
      log.info(`listening ws ${ws.address}${config.websocketPath}`);
    }
  } catch (err) {
    for (const l of all) l.close();
    throw err;
  }
  return {
    all,
    reload() {},
    close() {
      for (const l of all) l.close();
    },
  };
}
