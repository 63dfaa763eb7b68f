/**
 * Message forwarding between nodes, and its de-duplication.
 *
 * QoS 1/2: XADD to each target node's stream `P stream:{<node>}` (capped with MAXLEN ~); the
 * publisher's ack waits for it. The owner reads its stream with XREADGROUP, delivers locally,
 * waits until what that queued is durable in the store, then XACKs and deletes the entries of
 * the whole read in one MULTI; what it had read but not acknowledged when it died is re-read by
 * it or drained by the node taking it over. QoS 0: PUBLISH to the node's message channel. Either
 * way the message is one "publish" wire frame, encoded once for every target; the frames of one
 * event-loop turn for one node travel together as one "batch" frame (outbox.ts). A message for a
 * shared group goes to the one node picked for it, as a "publish-shared" frame naming the group.
 */
import type { StoredMessage } from "../broker/model.ts";
import { callBuffer, isRedisError, sleep } from "../redis/commands.ts";
import type { RedisClient } from "../redis/conn.ts";
import type { LinkContext } from "./context.ts";
import { Outbox } from "./outbox.ts";
import { FIELD, redisOutboxTransport } from "./outbox_transport.ts";
import { RecentIds } from "./recent_ids.ts";
import { MAX_ACK_READS, MAX_UNACKED, StreamAcks, Unsettled } from "./stream_acks.ts";
import { decodeFrames, encodeWire, idParts } from "./wire.ts";
import {
  dedupKey,
  type DrainOptions,
  MovedAway,
  sessionKey,
  type StreamEntry,
} from "./stream_delivery.ts";

const GROUP = "mqttwk";
/**
 * Stream entries per read. An entry holds a batch (up to 1,024 messages, see outbox.ts), so this
 * bounds one read to tens of thousands of messages: more would be delivered in one go and then
 * wait for one store flush, stalling the stream for seconds under overload.
 */
const READ_COUNT = 64;

/** Sends messages to the nodes that route them, and delivers what other nodes sent here. */
export class Forwarder {
  #recent: RecentIds;
  #reading: Promise<void> | null = null;
  /** Set while a takeover holds the reader (see pause). */
  #paused: Promise<void> | null = null;
  /** Sessions moving here (see hold): the reader waits while there are any. */
  #holds = 0;
  #unheld: (() => void) | null = null;
  /** The reader's connection broke: a read answered as it did may have left entries pending
   * here (the resent read brings newer ones only), so the loop reads from "0" again first. */
  #broke = false;
  /** Acknowledgements of the read loop not yet settled. */
  #acking = new Unsettled();
  /** Frames for other nodes, batched per node and event-loop turn. */
  readonly outbox: Outbox;
  /** XACK + XDEL of delivered entries, shared by the reads ready at the same time. */
  readonly acks: StreamAcks;

  constructor(
    private readonly ctx: LinkContext,
    /** Where forwarded messages are written (XADD, PUBLISH): one connection keeps their order. */
    private readonly out: RedisClient,
    /** Other nodes with subscribers for a topic (null: none). */
    private readonly targets: (topic: string) => string[] | null,
    private readonly streamMaxLen: number,
    recentIds: number,
  ) {
    this.#recent = new RecentIds(recentIds);
    this.acks = new StreamAcks(ctx, GROUP);
    this.outbox = new Outbox(redisOutboxTransport(out, ctx.keys, streamMaxLen));
  }

  /** Ids first seen from now on are compared against this mark by drainStream. */
  get mark(): number {
    return this.#recent.mark;
  }

  /** Resolves once QoS 1/2 copies are in the target nodes' streams. */
  forward(msg: StoredMessage): void | Promise<void> {
    const targets = this.targets(msg.topic);
    if (!targets) return;
    // Encoded once, into the first target's batch; the other targets get copies of it.
    const out = this.outbox;
    if (msg.qos === 0) {
      out.channelMessage(targets[0], msg);
      if (targets.length === 1) return; // `last` makes a view, for further nodes only
      const frame = out.last;
      for (let i = 1; i < targets.length; i++) out.toChannel(targets[i], frame);
      return;
    }
    const first = out.streamMessage(targets[0], msg);
    if (targets.length === 1) return first;
    const frame = out.last;
    const all = [first];
    for (let i = 1; i < targets.length; i++) all.push(out.toStream(targets[i], frame));
    return Promise.all(all).then(() => {});
  }

  /** Resolves once a QoS 1/2 copy for group `share` is in `node`'s stream. */
  forwardShared(
    msg: StoredMessage,
    node: string,
    share: string,
    hops: number,
  ): void | Promise<void> {
    if (msg.qos === 0) return this.outbox.channelMessage(node, msg, share, hops);
    return this.outbox.streamMessage(node, msg, share, hops);
  }

  /** A QoS 0 message from the node's message channel (`share`: for that group only). */
  fromChannel(msg: StoredMessage, share?: string, hops?: number): void {
    // A plain QoS 0 message is published once per target node, and a channel never repeats one:
    // there is nothing to suppress, and its id would only push QoS 1/2 ids out of the bounded
    // set (remembering them was a quarter of a receiving node's CPU at 190k msg/s).
    if ((msg.qos > 0 || share !== undefined) && this.#recent.seen(dedupKey(msg, share))) return;
    const r = this.ctx.host.deliverFromPeer(msg, share, hops);
    if (r) r.catch(() => {});
  }

  /** Creates `node`'s stream and consumer group unless they exist. */
  async ensureGroup(node: string): Promise<void> {
    try {
      await this.ctx.cmd.xgroup("CREATE", this.ctx.keys.stream(node), GROUP, "0", "MKSTREAM");
    } catch (e) {
      if (!isRedisError(e, "BUSYGROUP")) throw e;
    }
  }

  /** Starts reading this node's stream on its own (blocking) connection. */
  startReading(reader: RedisClient): void {
    reader.on("close", () => this.#broke = true);
    this.#reading ??= this.#read(reader).finally(() => this.#acking.none());
  }

  /** Resolves once the read loop ended (after the link stopped and closed the reader). */
  async stopped(): Promise<void> {
    await this.#reading?.catch(() => {});
  }

  /**
   * Holds the reader of this node's own stream (after the batch it is delivering) until the
   * returned function is called: a takeover delivers a dead node's backlog before anything
   * newer reaches the sessions it adopts.
   */
  async pause(): Promise<() => void> {
    while (this.#paused) await this.#paused;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#paused = promise;
    // Every batch delivered so far is acknowledged (or failed) before the takeover reads on.
    await this.#acking.none();
    return () => {
      this.#paused = null;
      resolve();
    };
  }

  /**
   * Holds delivery from this node's own stream while a session moves here (released by its
   * holder, then loaded from the store): what arrives meanwhile must wait for the session, not
   * miss it. The returned function ends the hold.
   */
  hold(): () => void {
    this.#holds++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.#holds === 0) {
        this.#unheld?.();
        this.#unheld = null;
      }
    };
  }

  /** Delivers whatever waits unread in this node's stream (before a session leaves). */
  async drainOwn(): Promise<void> {
    await this.#deliverUnread(this.ctx.keys.stream(this.ctx.me), -1);
  }

  /**
   * Delivers everything left in a dead node's stream here, page by page; returns the count. Ids
   * first seen after `after` (a mark) reached the adopted sessions already and are skipped.
   */
  async drainStream(node: string, after: number, opts: DrainOptions = {}): Promise<number> {
    const { cmd, me, keys } = this.ctx;
    const key = keys.stream(node);
    let count = 0;
    try {
      // Pending: read by the dead node but not acknowledged.
      let start = "0-0";
      while (true) {
        const lapsed = this.ctx.lease.whenHeld();
        if (lapsed) await lapsed;
        const res = await callBuffer(
          cmd,
          "XAUTOCLAIM",
          key,
          GROUP,
          me,
          0,
          start,
          "COUNT",
          READ_COUNT,
        ) as [Buffer, StreamEntry[], Buffer[]];
        const entries = res[1] ?? [];
        if (entries.length) {
          const lapsed = this.ctx.lease.whenHeld();
          if (lapsed) await lapsed;
          await this.#deliverEntries(key, entries, after, opts);
          count += entries.length;
        }
        start = res[0].toString();
        if (start === "0-0") break;
      }
    } catch (e) {
      if (!isRedisError(e, "NOGROUP")) throw e;
      await this.ensureGroup(node);
    }
    count += await this.#deliverUnread(key, after, opts);
    return count;
  }

  /** Sessions released to another node recently (see passOn). */
  #movedAway = new MovedAway();

  /**
   * Session `clientId` (subscribed to `filters`) moved to `node`: for `ms`, what this node's
   * stream still brings for it (sent here by a node that had not yet heard of the new route)
   * goes on to that node too, instead of reaching no one.
   */
  passOn(clientId: string, node: string, filters: string[], ms: number): void {
    this.#movedAway.add(clientId, node, filters, ms);
  }

  /**
   * Resolves once a QoS 1/2 copy of `msg` for sessions `clientIds` only is in `node`'s stream:
   * they moved there, and the node may have had the message already for its other subscribers.
   */
  async forwardTo(node: string, msg: StoredMessage, clientIds: string[]): Promise<void> {
    const frame = encodeWire({ kind: "publish-to", clientIds, msg });
    const { keys } = this.ctx;
    await this.out.xadd(keys.stream(node), "MAXLEN", "~", this.streamMaxLen, "*", FIELD, frame);
  }

  /**
   * forwardTo for sessions `clientIds`, each to its node `nodeOf(id)`, one copy per node; resolves
   * once all are queued.
   */
  forwardToSessions(
    msg: StoredMessage,
    clientIds: string[],
    nodeOf: (clientId: string) => string,
  ): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const id of clientIds) {
      const node = nodeOf(id);
      const list = byNode.get(node);
      if (list) list.push(id);
      else byNode.set(node, [id]);
    }
    return Promise.all([...byNode].map(([n, to]) => this.forwardTo(n, msg, to))).then(() => {});
  }

  /**
   * A QoS 1/2 message published on this node while sessions `clientIds` move here: they are not
   * resumed yet (its local subscribers had it), and the node they come from may no longer route
   * it. A copy for them alone goes into this node's own stream, which waits for their resume.
   * Resolves once it is there (the publisher's ack waits for it).
   */
  toArriving(msg: StoredMessage, clientIds: string[]): Promise<void> {
    return this.outbox.toStream(
      this.ctx.me,
      encodeWire({ kind: "publish-to", clientIds, msg }),
    );
  }

  /** Reads (without blocking) and delivers every unread entry of `key`; returns how many. */
  async #deliverUnread(key: string, after: number, opts: DrainOptions = {}): Promise<number> {
    let count = 0;
    // Bounded: a stream written faster than it is read must not hold a release forever.
    for (let round = 0; round < 1000; round++) {
      const lapsed = this.ctx.lease.whenHeld();
      if (lapsed) await lapsed;
      const res = await callBuffer(
        this.ctx.cmd,
        "XREADGROUP",
        "GROUP",
        GROUP,
        this.ctx.me,
        "COUNT",
        READ_COUNT,
        "STREAMS",
        key,
        ">",
      ) as [Buffer, StreamEntry[]][] | null;
      const entries = res?.[0]?.[1] ?? [];
      if (entries.length === 0) break;
      const held = this.ctx.lease.whenHeld();
      if (held) await held;
      await this.#deliverEntries(key, entries, after, opts);
      count += entries.length;
    }
    return count;
  }

  /** Own stream: pending entries of an earlier run first, then new ones; ack after durability. */
  async #read(reader: RedisClient): Promise<void> {
    const ctx = this.ctx;
    const key = ctx.keys.stream(ctx.me);
    let from = "0";
    let failures = 0;
    // Acknowledgements of the batches delivered last go on while the next reads wait and the next
    // batches are delivered (each waits for its own store flush, then XACK + XDEL): a read cycle
    // costs one round trip to Redis, not three. At most MAX_UNACKED entries at a time.
    const acks: Promise<void>[] = [];
    const ackSizes: number[] = [];
    let unacked = 0;
    let ackFailures = 0;
    // A failed acknowledgement leaves its entries pending (re-read after a restart or by a
    // takeover, de-duplicated then); it must not keep the entries read since from delivery.
    const settle = (a: Promise<void>) =>
      a.catch((e) => {
        if (ackFailures++ % 100 === 0) {
          ctx.log.warn(`cluster: acknowledging own stream entries: ${(e as Error)?.message ?? e}`);
        }
      });
    const oldest = () => {
      unacked -= ackSizes.shift()!;
      return settle(acks.shift()!);
    };
    const acked = async () => {
      while (acks.length) await oldest();
    };
    const read = (from: string) => {
      const args: (string | number)[] = ["GROUP", GROUP, ctx.me, "COUNT", READ_COUNT];
      if (from === ">") args.push("BLOCK", 1000);
      args.push("STREAMS", key, from);
      const p = reader.callBuffer("XREADGROUP", ...args) as Promise<
        [Buffer, StreamEntry[]][] | null
      >;
      p.catch(() => {}); // a read ahead left behind (the link stopped) must not go unhandled
      return p;
    };
    // The next read of new entries, sent before the entries of the last one are delivered: Redis
    // answers the reads of one connection in order, so delivery order is unchanged, and a read
    // cycle no longer adds a round trip to Redis to every delivery (a busy node waited 1-3 ms
    // per read for it). Only one read ahead.
    let ahead: ReturnType<typeof read> | null = null;
    const dropAhead = () => {
      ahead = null;
    };
    while (!ctx.stopped) {
      if (ctx.lease.fenced) {
        // Taken over: what is in the stream is the survivor's to drain. After rejoining, what
        // was read but not acknowledged meanwhile (a read ahead included) is read again first.
        dropAhead();
        await sleep(ctx.heartbeatMs);
        from = "0";
        continue;
      }
      // A lapsed lease (this process was paused, or Redis is slow): the stream may be the node's
      // that took this one over by now. Nothing is read until the lease is renewed, or its
      // renewal refused (fenced, above).
      const lapsed = ctx.lease.whenHeld();
      if (lapsed) {
        await lapsed.catch(() => {});
        continue;
      }
      try {
        // Pending entries are re-read from "0" until none is left: acknowledge first.
        if (from === "0") await acked();
        const next = ahead ?? read(from);
        ahead = null;
        const res = await next;
        failures = 0;
        if (ctx.lease.fenced) continue;
        if (this.#broke) {
          this.#broke = false;
          dropAhead();
          from = "0";
          continue;
        }
        const entries = res?.[0]?.[1] ?? [];
        if (from === "0" && entries.length === 0) {
          from = ">";
          continue;
        }
        if (entries.length === 0) continue;
        if (from === ">" && !ctx.stopped) ahead = read(">");
        // Deliveries stay in stream order; only their acknowledgements overlap. A takeover's
        // pause, a moving session's hold and the lease are checked right before the
        // (synchronous) delivery: the read may have been answered just before this process was
        // paused, and a node taken over meanwhile must not deliver what it read into sessions
        // that are owned elsewhere now. Those entries stay pending: the node that took this one
        // over claims them (or this one reads them again once it rejoined).
        while (acks.length && (unacked >= MAX_UNACKED || acks.length >= MAX_ACK_READS)) {
          await oldest();
        }
        let fenced = false;
        while (true) {
          if (this.#paused) await this.#paused;
          else if (this.#holds > 0) await new Promise<void>((r) => this.#unheld = r);
          else if (ctx.lease.held) break;
          else if (!(await Promise.resolve(ctx.lease.valid()).then(() => true, () => false))) {
            fenced = true;
            break;
          }
        }
        if (fenced) continue;
        const a = this.#deliverEntries(
          key,
          entries,
          -1,
          this.#movedAway.options((m, ids, nodeOf) => this.forwardToSessions(m, ids, nodeOf)),
        );
        a.catch(() => {}); // surfaced by settle
        acks.push(a);
        ackSizes.push(entries.length);
        unacked += entries.length;
        this.#acking.add(a);
      } catch (e) {
        dropAhead();
        if (ctx.stopped) return;
        if (isRedisError(e, "NOGROUP")) {
          await this.ensureGroup(ctx.me).catch(() => {});
          from = "0";
          continue;
        }
        failures++;
        if (failures === 1) {
          ctx.log.warn(`cluster: reading own stream: ${(e as Error)?.message ?? e}`);
        }
        from = "0"; // see #broke
        await sleep(Math.min(50 * 2 ** Math.min(failures, 6), 2000));
      }
    }
  }

  /**
   * Delivers stream entries locally, then acknowledges them. `after`: skip only ids first seen
   * after that mark (when the sessions they were meant for were already here); own stream: -1.
   */
  #deliverEntries(
    key: string,
    entries: StreamEntry[],
    after: number,
    opts: DrainOptions = {},
  ): Promise<void> {
    const host = this.ctx.host;
    const passed = opts.backlog && host.deliverBacklog
      ? host.deliverBacklog(() => this.#deliverNow(entries, after, opts))
      : this.#deliverNow(entries, after, opts);
    return this.#acknowledge(key, entries, passed);
  }

  /**
   * The synchronous part of #deliverEntries; returns what the XACK waits for: copies passed on
   * to other nodes, and held deliveries (opts.held) until they settle.
   */
  #deliverNow(entries: StreamEntry[], after: number, opts: DrainOptions): Promise<void>[] | null {
    const { host, log } = this.ctx;
    const delivered = opts.delivered;
    const deliverHeld = opts.held ? host.deliverHeld?.bind(host) : undefined;
    // Copies for shared groups passed on to another node: queued there before the XACK.
    let passed: Promise<void>[] | null = null;
    // Held deliveries not yet settled, plus one for this loop; one callback for all of them.
    let unsettled = 1;
    let settledAll: (() => void) | null = null;
    const settled = () => {
      if (--unsettled === 0) settledAll?.();
    };
    for (const [id, fields] of entries) {
      if (!fields) continue; // deleted by trimming
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i].toString() !== FIELD) continue;
        // One message, or a batch of them in the order they were sent.
        decodeFrames(fields[i + 1], (wire) => {
          let share: string | undefined;
          let hops = 0;
          if (wire.kind === "publish-to") {
            return this.#deliverToSessions(wire.msg, wire.clientIds, after, delivered, (r) => {
              (passed ??= []).push(r);
            });
          }
          if (wire.kind === "publish-shared") {
            share = wire.share;
            hops = wire.hops;
          } else if (wire.kind !== "publish") {
            return log.warn(`cluster: a ${wire.kind} message in stream entry ${id}`);
          }
          const msg = wire.msg;
          // The id's parts as just decoded: no second pass over the id string.
          const first = share === undefined && idParts.counter >= 0
            ? this.#recent.noteParts(idParts.prefix, idParts.counter)
            : this.#recent.note(dedupKey(msg, share));
          if (first !== undefined && (after < 0 || first > after)) return;
          if (share === undefined && deliverHeld) {
            unsettled++;
            deliverHeld(msg, settled);
          } else {
            const r = host.deliverFromPeer(msg, share, hops);
            if (r) (passed ??= []).push(r);
          }
          const more = share === undefined ? delivered?.(msg) : undefined;
          if (more) (passed ??= []).push(more);
        }, (e) => log.warn(`cluster: undecodable stream entry ${id}: ${e}`));
      }
    }
    if (--unsettled > 0) {
      (passed ??= []).push(new Promise<void>((resolve) => settledAll = resolve));
    }
    return passed;
  }

  /** A "publish-to" copy: to the named local sessions that did not have it yet. */
  #deliverToSessions(
    msg: StoredMessage,
    clientIds: string[],
    after: number,
    delivered: DrainOptions["delivered"],
    pass: (r: Promise<void>) => void,
  ): void {
    let to: string[] | null = null;
    for (const c of clientIds) {
      const first = this.#recent.note(sessionKey(msg, c));
      if (first !== undefined && (after < 0 || first > after)) continue;
      (to ??= []).push(c);
    }
    if (!to) return;
    this.ctx.host.deliverTo?.(msg, to);
    // Sessions named here that moved on again meanwhile.
    const more = delivered?.(msg, to);
    if (more) pass(more);
  }

  /** Once `passed` are queued and the local deliveries durable: XACK and XDEL the entries. */
  async #acknowledge(
    key: string,
    entries: StreamEntry[],
    passed: Promise<void>[] | null,
  ): Promise<void> {
    if (passed) await Promise.all(passed);
    await this.acks.ack(key, entries.map(([id]) => id.toString()));
  }
}
