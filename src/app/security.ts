/** Security wiring: who may connect and what they may do, and re-reading that on reload. */
import type { Broker } from "../broker/broker.ts";
import type { Logger } from "../log.ts";
import type { Security } from "../auth/mod.ts";

export { createSecurity, type Security } from "../auth/mod.ts";

/**
 * Re-reads the password and ACL files, then holds existing subscriptions to the new rules.
 * Resolves false (after logging why) when the files could not be loaded; the old rules stay.
 */
export async function reloadSecurity(
  security: Security,
  broker: Broker,
  log: Logger,
): Promise<boolean> {
  try {
    await security.reload();
  } catch (err) {
    log.error(`reload failed, keeping the previous settings: ${(err as Error).message}`);
    return false;
  }
  // Subscriptions made under the old rules are held to the new ones, as new ones would be.
  const dropped = broker.reauthorizeAll();
  if (dropped > 0) log.info(`${dropped} subscription(s) dropped under the reloaded ACL`);
  return true;
}
