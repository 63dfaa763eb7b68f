/**
 * Delivery of messages to one session: sent at once while its client keeps up and its
 * in-flight window has room, else queued (bounded, with the configured full-queue policy);
 * queued messages flow as acknowledgements free the window. QoS 0 is never queued. A message
 * whose Message Expiry has passed is never sent when it arrives or leaves the queue
 * (MQTT-3.3.2-5); one already sent is resent until acknowledged, expired or not: its onward
 * delivery has started (MQTT-4.4.0-1, and for QoS 2 MQTT-4.3.3-7).
 */
import type { QoS } from "../codec/packets.ts";
import type { Logger } from "../log.ts";
import { compact, isExpired } from "./messages.ts";
import type { OutboundEntry, StoredMessage } from "./model.ts";
import type { BrokerOptions } from "./options.ts";
import { hasTemplates, publishTemplate } from "./outgoing.ts";
import type { ClientOutput } from "./output.ts";
import type { Persistence } from "./persistence.ts";
import type { RetainedFeed } from "./retained_feed.ts";
import { type QueueBudget, queuedCost, type Session } from "./session.ts";
import type { BrokerStats } from "./stats.ts";
import { VolatileDeliveries } from "./volatile.ts";

/** When each in-flight delivery was last sent (only tracked when retry is on). */
const sentTimes = new WeakMap<OutboundEntry, number>();

export class Delivery {
  readonly #options: BrokerOptions;
  readonly #stats: BrokerStats;
  readonly #persistence: Persistence;
  readonly #volatile: VolatileDeliveries;
  readonly #log: Logger;
  readonly #budget: QueueBudget;
  #totalDrops = 0;
  #totalLoggedAt = 0;

  constructor(
    options: BrokerOptions,
    stats: BrokerStats,
    persistence: Persistence,
    volatile: VolatileDeliveries,
    log: Logger,
    budget: QueueBudget = { bytes: 0 },
  ) {
    this.#options = options;
    this.#stats = stats;
    this.#persistence = persistence;
    this.#volatile = volatile;
    this.#log = log;
    this.#budget = budget;
  }

  /**
   * Sends or queues one message for one session. `single`: no other session receives this
   * message now, so its PUBLISH is written straight into the client's buffer, not shared.
   * `subscriptionIds`: MQTT 5 identifiers of the matching subscriptions, sent to 5.0 clients.
   * `share`: the shared subscription it is delivered through (see OutboundEntry.share).
   */
  deliver(
    s: Session,
    msg: StoredMessage,
    qos: QoS,
    retain: boolean,
    single = false,
    subscriptionIds: number[] | null = null,
    share?: string,
  ): void {
    // Messages from other nodes, the retained store or a restart may have waited: expired ones
    // go nowhere (MQTT-3.3.2-5). Messages without an expiry pay one field read.
    if (msg.expiresAt !== undefined && isExpired(msg, Date.now())) {
      this.#stats.expired++;
      return;
    }
    const c = s.client;
    if (qos === 0) {
      if (c && c.state === "connected" && !c.congested) {
        if (c.v5 !== null) {
          // 5.0: its own encoding (topic alias), or dropped if too large (MQTT-3.1.2-25).
          if (!c.v5.prepare(msg, 0, retain, subscriptionIds, single)) return this.#tooLarge(s, msg);
          c.sendPrepared(0, false);
        } else if (single) c.sendMessage(msg, 0, retain, 0);
        else c.sendPublish(publishTemplate(msg, c.version, 0, retain), 0, false);
        this.#stats.messagesOut++;
      } else {
        // QoS 0 is not queued for offline sessions, and is shed first for slow readers.
        this.#stats.dropped++;
      }
      return;
    }
    // Every field it gets later is in the literal: one added afterwards would give each entry a
    // property store of its own (an allocation per QoS 1 delivery).
    const entry: OutboundEntry = {
      seq: s.nextSeq++,
      message: msg,
      qos,
      retain,
      state: "queued",
      packetId: undefined,
      heldAt: undefined,
    };
    if (subscriptionIds !== null) entry.subscriptionIds = subscriptionIds;
    if (share !== undefined) entry.share = share;
    if (
      c && c.state === "connected" && s.queueLength === 0 && s.backlog === null &&
      s.inflight.size < c.inflightWindow && !c.congested
    ) {
      // Sent at once and normally acknowledged within milliseconds: the payload may stay a view
      // into the socket chunk; the broker's tick compacts what is still in flight a second later.
      this.#send(s, c, entry, true, single);
      return;
    }
    this.#enqueue(s, c, entry);
  }

  /**
   * Queues `entry` (the client is offline, behind, or its in-flight window is full), within the
   * session's and the node's limits and by the full-queue policy. Apart from deliver: the path
   * every delivery takes stays small.
   */
  #enqueue(s: Session, c: ClientOutput | null, entry: OutboundEntry): void {
    const msg = entry.message;
    const options = this.#options;
    compact(msg);
    const size = msg.payload.byteLength;
    if (
      s.queueLength >= options.maxQueuedMessages ||
      (options.maxQueuedBytes > 0 && s.queuedBytes + size > options.maxQueuedBytes)
    ) {
      if (options.queueFullPolicy === "drop-oldest" && s.readyLength > 0) {
        this.#forget(s, s.dequeue()!);
      } else {
        this.#dropped(s);
        return;
      }
      this.#dropped(s);
    }
    const total = options.maxQueuedBytesTotal;
    if (total > 0 && this.#budget.bytes + queuedCost(msg) > total) {
      // The node's queues together are full: this session gives up its oldest message for the
      // new one if the policy says so and it has any, else the new one goes.
      if (options.queueFullPolicy === "drop-oldest" && s.readyLength > 0) {
        this.#forget(s, s.dequeue()!);
        this.#totalFull(s);
      } else {
        this.#totalFull(s);
        return;
      }
    }
    s.enqueue(entry);
    if (
      entry.qos === 1 && s.persistent && c && c.state === "connected" && !c.congested &&
      s.backlog === null && VolatileDeliveries.isAckable(msg)
    ) {
      // Queued only behind a full in-flight window of a client that keeps reading: it is
      // normally sent and acknowledged within milliseconds, and held unwritten like a delivery
      // sent at once (volatile.ts). A client that stopped reading (congested) or is offline
      // gets its queue written now.
      this.#volatile.hold(s, entry);
    } else this.#persistence.putOutbound(s, entry);
  }

  /**
   * Moves queued messages into the in-flight window while the client keeps up, then the retained
   * messages its recent SUBSCRIBEs are still owed.
   */
  pump(s: Session): void {
    const c = s.client;
    if (!c || c.state !== "connected") return;
    let now = 0;
    while (s.readyLength > 0 && s.inflight.size < c.inflightWindow && !c.congested) {
      const e = s.dequeue()!;
      if (e.message.expiresAt !== undefined && isExpired(e.message, now ||= Date.now())) {
        // Expired while queued (MQTT-3.3.2-5): it leaves the queue and the store unsent.
        this.#stats.expired++;
        this.#forget(s, e);
        continue;
      }
      this.#send(s, c, e);
    }
    // A backlog still loading reads its next page once little is ready (paced by the client).
    if (s.backlog !== null) s.wantBacklog();
    if (s.retainedFeed !== null && s.queueLength === 0) this.#feedRetained(s, c, s.retainedFeed);
  }

  /**
   * Sends retained messages while the client has room: never into a full buffer (where QoS 0
   * would be shed) nor into the queue (where they would count against its limit). Output held
   * behind a commit (the SUBACK's) counts too: the first retained messages join it there, so
   * live messages arriving during the commit follow them, as Mosquitto orders them. The
   * client's draining (or the gate's release) calls pump again.
   */
  #feedRetained(s: Session, c: ClientOutput, feed: RetainedFeed): void {
    const maxInflight = this.#options.maxInflight;
    const limit = this.#options.outboundBufferBytes;
    while (c.buffered + c.gatedBytes <= limit) {
      const m = feed.peek();
      if (m === null) {
        s.retainedFeed = null;
        return;
      }
      const qos = feed.qos;
      if (qos > 0 && s.inflight.size >= maxInflight) return;
      feed.take();
      // Only this client gets it now: written straight into its buffer.
      this.deliver(s, m, qos, true, true, feed.subscriptionIds);
    }
  }

  /** After CONNACK: resend what was in flight (DUP), then feed the queue. */
  resume(s: Session): void {
    const c = s.client;
    if (!c) return;
    let tooLarge: OutboundEntry[] | null = null;
    for (const e of s.inflight.values()) {
      const sent = resend(c, e);
      if (sent) this.#stats.messagesOut++;
      else if (sent === null) (tooLarge ??= []).push(e);
    }
    if (tooLarge !== null) {
      // Too large for this connection's Maximum Packet Size: as if delivered (MQTT-3.1.2-25).
      for (const e of tooLarge) {
        this.#tooLarge(s, e.message);
        this.complete(s, e);
      }
      return; // complete() pumped the queue
    }
    this.pump(s);
  }

  /** The subscriber finished the flow of `e` (PUBACK, or PUBCOMP): free its slot. */
  complete(s: Session, e: OutboundEntry): void {
    s.deleteInflight(e.packetId!);
    sentTimes.delete(e);
    this.#forget(s, e);
    this.pump(s);
  }

  /**
   * `e` is done with (acknowledged, dropped, expired): it leaves the store, or if it is held
   * unwritten (volatile.ts) it is settled, and there is nothing to remove.
   */
  #forget(s: Session, e: OutboundEntry): void {
    if (!this.#volatile.acknowledged(e)) this.#persistence.removeOutbound(s, e.seq);
  }

  /** In-session retry: resends deliveries unacknowledged for `retryInterval` (off by default). */
  retry(s: Session, now: number): void {
    const c = s.client;
    if (!c || c.state !== "connected" || s.inflight.size === 0) return;
    const retryMs = this.#options.retryInterval * 1000;
    for (const e of s.inflight.values()) {
      const sentAt = sentTimes.get(e) ?? 0;
      if (now - sentAt < retryMs) continue;
      sentTimes.set(e, now);
      resend(c, e);
    }
  }

  /** A drop because all queues together are full: one log line a second at most. */
  #totalFull(s: Session): void {
    this.#stats.dropped++;
    this.#totalDrops++;
    const now = Date.now();
    if (now - this.#totalLoggedAt < 1000) return;
    this.#totalLoggedAt = now;
    this.#log.warn(
      `queued messages of all sessions reached ${this.#budget.bytes} bytes ` +
        `(mqttwk.broker.max-queued-bytes-total ${this.#options.maxQueuedBytesTotal}); dropping ` +
        `for ${s.clientId} (policy ${this.#options.queueFullPolicy}, ${this.#totalDrops} so far)`,
    );
  }

  #dropped(s: Session): void {
    this.#stats.dropped++;
    if (s.dropped++ % 1000 === 0) {
      this.#log.warn(
        `queue of ${s.clientId} is full (${s.queueLength} messages, ${s.queuedBytes} bytes); ` +
          `dropping messages (policy ${this.#options.queueFullPolicy}, ${s.dropped} so far)`,
      );
    }
  }

  /** A message too large for a 5.0 client's Maximum Packet Size: counted, not sent. */
  #tooLarge(s: Session, msg: StoredMessage): void {
    this.#stats.dropped++;
    this.#log.debug(
      `message ${msg.topic} (${msg.payload.byteLength} bytes) exceeds the maximum packet size ` +
        `of ${s.clientId}; not sent to it`,
    );
  }

  #send(s: Session, c: ClientOutput, entry: OutboundEntry, fresh = false, single = false): void {
    const v5 = c.v5;
    if (
      v5 !== null &&
      !v5.prepare(entry.message, entry.qos, entry.retain, entry.subscriptionIds ?? null, single)
    ) {
      // MQTT-3.1.2-25: discarded as if delivered; a queued entry leaves the store.
      this.#tooLarge(s, entry.message);
      if (!fresh) this.#forget(s, entry);
      return;
    }
    const pid = s.allocatePacketId();
    entry.packetId = pid;
    entry.state = "sent";
    s.setInflight(pid, entry);
    if (this.#options.retryInterval > 0) sentTimes.set(entry, Date.now());
    let durable = false;
    if (s.persistent) {
      if (fresh && entry.qos === 1 && VolatileDeliveries.isAckable(entry.message)) {
        this.#volatile.hold(s, entry);
      } else if (this.#volatile.holds(entry)) {
        // Held since it was queued: still written only if unacknowledged after its grace.
      } else {
        this.#persistence.putOutbound(s, entry);
        // Exactly once across a crash: a QoS 2 delivery leaves only once its packet id is durable.
        durable = entry.qos === 2;
      }
    }
    if (v5 !== null) c.sendPrepared(pid, false, durable);
    else if (single || (!fresh && !hasTemplates(entry.message))) {
      // Sent from the queue, one session at a time: written straight into the buffer unless
      // another session's delivery already built the shared bytes (a template is a buffer and
      // an array per message, most of what a queued delivery allocated).
      c.sendMessage(entry.message, entry.qos, entry.retain, pid, durable);
    } else {
      c.sendPublish(
        publishTemplate(entry.message, c.version, entry.qos, entry.retain),
        pid,
        false,
        durable,
      );
    }
    this.#stats.messagesOut++;
  }
}

/**
 * Sends an in-flight delivery again: PUBREL once released, else the PUBLISH with DUP set.
 * Returns whether it was a PUBLISH; null when it is too large for a 5.0 client (not sent).
 */
function resend(c: ClientOutput, e: OutboundEntry): boolean | null {
  if (e.state === "released") {
    c.sendAck(0x62, e.packetId!);
    return false;
  }
  if (c.v5 !== null) {
    if (!c.v5.prepare(e.message, e.qos, e.retain, e.subscriptionIds ?? null)) return null;
    c.sendPrepared(e.packetId!, true);
    return true;
  }
  c.sendPublish(publishTemplate(e.message, c.version, e.qos, e.retain), e.packetId!, true);
  return true;
}
