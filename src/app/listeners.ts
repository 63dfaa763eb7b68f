/**
 * The one call into the transport's listeners: the configuration becomes each listener's own
 * settings here, and nowhere else.
 */
import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { type Listeners, startListeners } from "../transport/listeners.ts";
import type { Guard } from "../transport/listening.ts";
import { listenerSettings } from "../transport/settings.ts";

export type { Listeners } from "../transport/listeners.ts";

/**
 * Starts every listener the configuration enables and resolves once all are bound; their
 * sockets count against `guard`'s budget.
 */
export async function openListeners(
  config: Config,
  broker: Broker,
  log: Logger,
  guard?: Guard,
): Promise<Listeners> {
  const listeners = startListeners(
    listenerSettings(config),
    (conn) => void broker.handleConnection(conn),
    log,
    guard,
  );
  try {
    await listeners.ready;
  } catch (err) {
    // The ones that did bind must not outlive a failed start of an in-process app.
    listeners.close();
    throw err;
  }
  return listeners;
}
