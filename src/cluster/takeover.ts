/**
 * Taking over a dead node. The survivors race for `P {g}:adopt:<node>` (SET NX); the winner
 * resumes the dead node's sessions offline, publishes the wills it kept, drains its stream into
 * those sessions, removes its routes and membership and tells every node. Publishers that had
 * not yet heard of the death may still write to its stream: it is drained again 2 × timeout
 * later (what matches an adopted session that moved on meanwhile goes on to its holder), then
 * left to expire.
 */
import { evalScript, sleep } from "../redis/commands.ts";
import type { LinkContext } from "./context.ts";
import type { Forwarder } from "./forwarding.ts";
import { subscribedTo } from "./stream_delivery.ts";
import type { RouteTable } from "./routes.ts";
import type { SessionHolder } from "./sessions.ts";
import type { KeptWills } from "./wills.ts";
import { encodeWire } from "./wire.ts";
import type { LoadedSession, StoredMessage } from "../broker/model.ts";
import { isShared } from "../broker/shared_groups.ts";

/** The parts of the link a takeover works with. */
export interface TakeoverParts {
  sessions: Pick<SessionHolder, "claimFrom" | "adopt" | "draining">;
  wills: Pick<KeptWills, "publishOf">;
  forwarder: Pick<Forwarder, "mark" | "drainStream" | "pause" | "forwardToSessions">;
  routes: Pick<RouteTable, "settled" | "drop" | "added">;
}

/**
 * The election, atomically with the death check: only while the node's heartbeat is missing
 * does one survivor win the lock, and winning increments the node's epoch, so anything the node
 * writes from now on (it may only be frozen) is refused. KEYS: adopt lock, alive, epoch.
 * ARGV: this node, lock TTL. 1 = won.
 */
const ELECT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
redis.call('INCR', KEYS[3])
return 1`;

/** Takes `dead` over if this node wins the election; resolves when done (or lost). */
export async function takeOver(ctx: LinkContext, parts: TakeoverParts, dead: string) {
  const { cmd, me, log, nodeTimeoutMs } = ctx;
  // A node whose own lease lapsed (it was paused itself) takes no one over before renewing it:
  // it may have been taken over meanwhile, and would hold the election lock and the dead node's
  // stream while it cannot write.
  await ctx.lease.whenHeld();
  const lock = ctx.g(`adopt:${dead}`);
  const keys = [lock, ctx.g(`alive:${dead}`), ctx.g(`epoch:${dead}`)];
  const won = await evalScript(cmd, ELECT, keys, [me, Math.max(30_000, 6 * nodeTimeoutMs)]);
  if (won !== 1) return;
  log.warn(`cluster: node ${dead} is dead; taking over its sessions and queued messages`);
  const started = performance.now();
  const stalls = ctx.stalls.window();
  // Order per publisher: the dead node's backlog reaches its sessions before anything newer.
  // The own stream's reader waits while the sessions are claimed (each with its oldest queue
  // page only), their routes announced (a publisher that heard of them writes to both streams
  // from then on) and the dead node's stream drained; the sessions are resumed before that
  // drain, with their backlog still to come: the rest of their stored queues, then the dead
  // node's stream, while anything newer waits behind it (Session.backlog). A client
  // reconnecting meanwhile is answered at once.
  const resume = await parts.forwarder.pause();
  let mark = 0;
  let loaded: LoadedSession[] = [];
  let drained = 0;
  try {
    // Each session with its oldest queue page only: the rest is read once it is resumed.
    loaded = await parts.sessions.claimFrom(dead);
    const t1 = performance.now();
    const filters = new Set(loaded.flatMap((l) => l.subscriptions.map((s) => s.filter)));
    await Promise.all([...filters].map((f) => parts.routes.added(f)));
    // Copies first seen from now on reach the adopted sessions through this node's own stream
    // (behind the backlog): met again in the dead node's stream, they are duplicates.
    mark = parts.forwarder.mark;
    parts.sessions.adopt(loaded, true);
    log.info(
      `cluster: resumed ${loaded.length} session(s) of node ${dead} ` +
        `${ms(performance.now() - started)} after the election (sessions loaded in ` +
        `${ms(t1 - started)}, routes in ${ms(performance.now() - t1)}); draining its stream`,
    );
    // The dead node's stream, page by page (each page delivered in one turn, acknowledged once
    // durable), into the adopted sessions before anything queued for them since. This node's
    // own stream waits meanwhile: it holds copies of the same messages (for this node's own
    // sessions), and one read there first would be skipped here as a duplicate, out of order.
    // Releases of the adopted sessions to other nodes wait too, or the rest would miss them.
    const ids = loaded.map((l) => l.session.clientId);
    const draining = parts.forwarder.drainStream(dead, mark, { backlog: true });
    parts.sessions.draining(draining);
    try {
      drained = await draining;
    } finally {
      ctx.host.backlogDrained?.(ids);
    }
  } finally {
    resume();
  }
  const adopted = loaded.length;
  log.info(
    `cluster: delivered the ${drained} message(s) left in node ${dead}'s stream ` +
      `${ms(performance.now() - started)} after the election; longest event-loop stall ` +
      `meanwhile ${stalls()} ms`,
  );
  const wills = await parts.wills.publishOf(dead);
  await cmd.multi()
    .del(ctx.g(`routes:${dead}`))
    .del(ctx.g(`held:${dead}`))
    .srem(ctx.g("nodes"), dead)
    .exec();
  await cmd.publish(ctx.keys.channel("nodes"), encodeWire({ kind: "node-gone", node: dead }));
  parts.routes.drop(dead);
  log.info(
    `cluster: took over node ${dead}: ${adopted} session(s), ${drained} queued message(s), ` +
      `${wills} will(s) of clean-session clients`,
  );
  // Publishers learn of the death one heartbeat later at most: catch what they still sent.
  await sleep(2 * nodeTimeoutMs);
  if (ctx.stopped) return;
  const passedOn = { count: 0, nodes: new Set<string>() };
  const late = await parts.forwarder.drainStream(dead, mark, {
    delivered: await movedOn(ctx, loaded, parts.forwarder, passedOn),
  });
  if (late) {
    const on = passedOn.count
      ? `; ${passedOn.count} of them also to node(s) ${[...passedOn.nodes].join(", ")}, ` +
        `where adopted sessions moved meanwhile`
      : "";
    log.info(`cluster: ${late} late message(s) for dead node ${dead} delivered${on}`);
  }
  await cmd.pexpire(ctx.keys.stream(dead), 3_600_000);
  await cmd.del(lock);
}

/**
 * For the late drain: adopted sessions that moved on to another node since would miss what it
 * delivers here, so a message matching one of their (non-shared) subscriptions is also put into
 * their holder's stream, for them alone (that node may have had the message already for its own
 * subscribers; it skips only a copy it already had for that session: at least once).
 */
async function movedOn(
  ctx: LinkContext,
  loaded: LoadedSession[],
  forwarder: Pick<Forwarder, "forwardToSessions">,
  passedOn: { count: number; nodes: Set<string> },
): Promise<
  ((msg: StoredMessage, only?: readonly string[]) => Promise<void> | undefined) | undefined
> {
  const here = new Set(ctx.host.localSessions());
  const gone = loaded.filter((l) => !here.has(l.session.clientId));
  if (gone.length === 0) return undefined;
  const holders = await ctx.cmd.hmget(ctx.g("holder"), ...gone.map((l) => l.session.clientId));
  const elsewhere = new Map<string, { node: string; filters: string[] }>();
  gone.forEach((l, i) => {
    const node = holders[i];
    const filters = l.subscriptions.map((s) => s.filter).filter((f) => !isShared(f));
    if (node && node !== ctx.me && filters.length) {
      elsewhere.set(l.session.clientId, { node, filters });
    }
  });
  if (elsewhere.size === 0) return undefined;
  const sessions = [...elsewhere].map(([id, e]) => [id, e.filters] as [string, string[]]);
  return (msg, only) => {
    const ids = subscribedTo(sessions, msg.topic, only);
    if (!ids) return undefined;
    passedOn.count++;
    for (const id of ids) passedOn.nodes.add(elsewhere.get(id)!.node);
    return forwarder.forwardToSessions(msg, ids, (id) => elsewhere.get(id)!.node);
  };
}

function ms(t: number): string {
  return `${Math.round(t)} ms`;
}
