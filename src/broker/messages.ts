/** Creating application messages, and keeping the ones that outlive a read buffer small. */
import type { QoS } from "../codec/packets.ts";
import type { StoredMessage } from "./model.ts";

/** Makes messages with ids unique across the cluster and across restarts of a node. */
export class MessageFactory {
  /** Node id plus start time: a restarted node never reuses an id of its earlier run. */
  readonly #prefix: string;
  #counter = 0;

  constructor(nodeId: string) {
    this.#prefix = `${nodeId}-${Date.now().toString(36)}-`;
  }

  create(
    topic: string,
    payload: Uint8Array,
    qos: QoS,
    retain: boolean,
    origin: string,
  ): StoredMessage {
    return {
      id: `${this.#prefix}${(++this.#counter).toString(36)}`,
      topic,
      payload,
      qos,
      retain,
      createdAt: Date.now(),
      origin,
    };
  }
}

/**
 * Copies a payload out of a larger read buffer, so a message that is kept (retained, queued, in
 * flight) does not pin a whole socket chunk. Messages that are only passed through are not copied.
 */
export function compact(msg: StoredMessage): void {
  const p = msg.payload;
  if (p.buffer.byteLength > p.byteLength * 2 + 256) msg.payload = p.slice();
}
