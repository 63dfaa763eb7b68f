/**
 * The broker's once-a-second housekeeping: in-flight payloads stop pinning socket chunks,
 * offline sessions expire (and delayed wills fall due), retained messages past their Message
 * Expiry go, slow consumers are cut off, and (when configured) unacknowledged deliveries are
 * retried in-session.
 */
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Core } from "./core.ts";
import { compact } from "./messages.ts";
import type { Session } from "./session.ts";

export function tick(core: Core): void {
  const now = Date.now();
  // forEach, not for-of, over every session: this code runs too rarely to be optimized, and
  // unoptimized iteration allocates a result object per entry (1.2 MB a second for 10,000 idle
  // sessions, which also kept the idle collection from ever seeing the broker quiet).
  core.sessions.map.forEach(compactInflight);
  core.sessions.expire(now);
  core.retainer.sweep(now);
  core.wills.delayed.due(now, core.sessions.map);
  cutSlowConsumers(core, now);
  // In-session retry is off by default, as the spec advises for 3.1.1.
  if (core.options.retryInterval > 0) {
    core.clients.forEach((c) => {
      if (c.session && c.state === "connected") core.delivery.retry(c.session, now);
    });
  }
}

/** Deliveries still unacknowledged after a tick must not pin their socket chunks. */
function compactInflight(s: Session): void {
  if (s.inflight.size > 0) { for (const e of s.inflight.values()) compact(e.message); }
}

function cutSlowConsumers(core: Core, now: number): void {
  const limit = core.options.slowConsumerTimeout * 1000;
  for (const c of core.congested) {
    const since = c.congestedSince;
    if (since === 0) core.congested.delete(c);
    else if (now - since >= limit) {
      core.log.warn(
        `client ${c.info.clientId} has not read ${c.buffered} bytes for ` +
          `${core.options.slowConsumerTimeout}s; disconnecting slow consumer`,
      );
      core.congested.delete(c);
      // 5.0: DISCONNECT 0x97 Quota exceeded (4.13.2), behind what it has not read yet.
      c.close("slow consumer", true, ReasonCode.QuotaExceeded);
    }
  }
}
