/**
 * The ack of a client's QoS 1/2 PUBLISH that a sink (the Kafka bridge) holds until the message is
 * safe (Publisher.publishHeld). One object per PUBLISH waiting, taken from a pool and given back
 * once told: thousands wait at a time for Kafka's round trip, and a closure each (with its
 * context) survived the young generation and was promoted, a third of what the bridge added to
 * the collector's work.
 */
import { notAcknowledged } from "./ack_waits.ts";
import type { Client } from "./client.ts";
import type { Core } from "./core.ts";
import { ackedId, ackedQos, type StoredMessage } from "./model.ts";
import type { SinkDone } from "./ports/sink.ts";

/** Spare objects kept: more than a window of PUBLISHes in flight to Kafka under a fan-in. */
const MAX_SPARE = 16_384;

export class HeldAck implements SinkDone {
  static #spare: HeldAck[] = [];
  #core: Core | null = null;
  #client: Client | null = null;
  #topic = "";
  /** packAck: the packet id, QoS and reason code. */
  #packed = 0;
  /** Set when the ack also waits for the message's held deliveries (durable QoS 1). */
  #msg: StoredMessage | undefined = undefined;

  /**
   * The ack `packed` (packAck) of `client`'s PUBLISH on `topic`. With `msg`, it also waits for
   * that message's held deliveries to settle.
   */
  static take(
    core: Core,
    client: Client,
    topic: string,
    packed: number,
    msg: StoredMessage | undefined,
  ): HeldAck {
    const h = HeldAck.#spare.pop() ?? new HeldAck();
    h.#core = core;
    h.#client = client;
    h.#topic = topic;
    h.#packed = packed;
    h.#msg = msg;
    return h;
  }

  /** Acknowledges the PUBLISH, or leaves it unacknowledged (`err`); then goes back to the pool. */
  sinkDone(err?: Error): void {
    const core = this.#core;
    const client = this.#client;
    // Told twice would ack someone else's PUBLISH once reused: the second time is ignored.
    if (core === null || client === null) return;
    const topic = this.#topic;
    const packed = this.#packed;
    const msg = this.#msg;
    this.#core = null;
    this.#client = null;
    this.#topic = "";
    this.#msg = undefined;
    if (HeldAck.#spare.length < MAX_SPARE) HeldAck.#spare.push(this);
    if (err !== undefined) {
      notAcknowledged(core, client, topic, ackedQos(packed), ackedId(packed), err);
    } else core.volatile.ackWhenSettled(msg, client, packed);
  }
}
