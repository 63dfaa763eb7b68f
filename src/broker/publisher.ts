/**
 * The path of every message accepted on this node (from a client, a will, the Kafka ingress):
 * retained store, local subscribers, other nodes, then the sinks (Kafka bridge).
 */
import type { ClientInfo, StoredMessage } from "./model.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import type { MessageSink, SinkDone } from "./ports/sink.ts";
import type { Retainer } from "./retain.ts";
import type { Router } from "./router.ts";
import type { SharedDelivery } from "./shared_delivery.ts";

export class Publisher {
  readonly #retainer: Retainer;
  readonly #router: Router;
  readonly #cluster: ClusterLink | undefined;
  readonly #sinks: MessageSink[];
  readonly #shared: SharedDelivery | undefined;
  /** Sessions of this node the last published message matched. */
  #routedHere = 0;
  /** The one sink, when there is exactly one and it has the callback form (publishHeld). */
  readonly #heldSink: MessageSink | null;

  constructor(
    retainer: Retainer,
    router: Router,
    cluster: ClusterLink | undefined,
    sinks: MessageSink[],
    shared?: SharedDelivery,
  ) {
    this.#retainer = retainer;
    this.#router = router;
    this.#cluster = cluster;
    this.#sinks = sinks;
    this.#shared = shared;
    this.#heldSink = sinks.length === 1 && sinks[0].acceptThen !== undefined ? sinks[0] : null;
  }

  /** Whether publishHeld may hold an ack through its callback (see there). */
  get holdsByCallback(): boolean {
    return this.#heldSink !== null;
  }

  /**
   * Routes a message accepted on this node. Returns a promise when the publisher's ack must wait
   * (QoS 1/2 copies queued for other nodes, a sink's at-least-once hand-off). Sinks see only
   * messages with a local origin (`from`).
   */
  publish(msg: StoredMessage, from?: ClientInfo): void | Promise<void> {
    let waits = this.#route(msg);
    const sinks = this.#sinks;
    if (from && sinks.length > 0) {
      for (const sink of sinks) {
        const r = sink.accept(msg, from);
        if (r) waits = also(waits, r);
      }
    }
    return all(waits);
  }

  /**
   * publish() for a client's own QoS 1/2 PUBLISH: when the one sink (with its callback form) is
   * the only thing the ack waits for, returns true and the ack waits for `done` instead of a
   * promise per message; otherwise as publish(), and `done` is never called.
   */
  publishHeld(msg: StoredMessage, from: ClientInfo, done: SinkDone): void | Promise<void> | true {
    const sink = this.#heldSink;
    if (sink === null) return this.publish(msg, from);
    const waits = this.#route(msg);
    if (waits === null) return sink.acceptThen!(msg, from, done) || undefined;
    const r = sink.accept(msg, from);
    return all(r ? also(waits, r) : waits);
  }

  /** Retained store, local subscribers, other nodes, shared groups: what the ack waits for. */
  #route(msg: StoredMessage): Waits {
    if (msg.retain) this.#retainer.apply(msg);
    this.#routedHere = this.#router.route(msg);
    let waits: Waits = null;
    if (this.#cluster) {
      const r = this.#cluster.forward(msg);
      if (r) waits = r;
    }
    // One receiver per shared group, here or on another node (queued there before the ack).
    if (this.#shared?.active) {
      const r = this.#shared.dispatch(msg);
      if (r) waits = also(waits, r);
    }
    return waits;
  }

  /**
   * Right after publish(msg): true when nobody subscribes to it: no session here, no shared group
   * (whose members here or elsewhere are all known to this node), no other node (as far as the
   * cluster link can tell for sure) and no sink. For MQTT 5's 0x10 No matching subscribers,
   * which must never be said when a subscriber exists.
   */
  unrouted(msg: StoredMessage): boolean {
    if (this.#routedHere > 0 || this.#sinks.length > 0) return false;
    if (this.#shared?.active && this.#shared.matches(msg.topic)) return false;
    return this.#cluster === undefined || this.#cluster.routedElsewhere?.(msg.topic) === false;
  }
}

/**
 * What a message's ack waits for: nothing, one promise (the usual case: no array per message,
 * and handlers/publish.ts recognises a turn's shared outbox promise), or several.
 */
type Waits = Promise<void> | Promise<void>[] | null;

function also(waits: Waits, p: Promise<void>): Waits {
  if (waits === null) return p;
  if (Array.isArray(waits)) {
    waits.push(p);
    return waits;
  }
  return [waits, p];
}

function all(waits: Waits): void | Promise<void> {
  if (waits === null) return;
  return Array.isArray(waits) ? Promise.all(waits).then(() => {}) : waits;
}
