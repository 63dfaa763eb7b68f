import type { ClientInfo, StoredMessage } from "../model.ts";

/**
 * Told once when a message a sink holds the ack of is safe (no argument) or refused (the error,
 * which leaves the message unacknowledged); never before acceptThen returned. An object, not a
 * closure: the broker reuses these, one per PUBLISH waiting for Kafka (held_ack.ts).
 */
export interface SinkDone {
  sinkDone(err?: Error): void;
}

/**
 * Receives every message accepted from a local client (after authorization, before the
 * publisher is acknowledged). Returning a promise delays the publisher's PUBACK/PUBREC until it
 * resolves (at-least-once hand-off); a rejection leaves the message unacknowledged.
 */
export interface MessageSink {
  accept(message: StoredMessage, from: ClientInfo): void | Promise<void>;
  /**
   * The same hand-off without a promise per message, for a client's QoS 1/2 PUBLISH when this is
   * the only thing its ack waits for (tens of thousands a second under a fan-in to Kafka): true
   * when the ack waits and `done` will be called (exactly once, later), false when nothing waits
   * (`done` is never called). Optional; without it the broker uses accept.
   */
  acceptThen?(message: StoredMessage, from: ClientInfo, done: SinkDone): boolean;
}
