import type { ClientInfo, StoredMessage } from "../model.ts";

/**
 * Receives every message accepted from a local client (after authorization, before the
 * publisher is acknowledged). Returning a promise delays the publisher's PUBACK/PUBREC until it
 * resolves (at-least-once hand-off); a rejection leaves the message unacknowledged.
 */
export interface MessageSink {
  accept(message: StoredMessage, from: ClientInfo): void | Promise<void>;
}
