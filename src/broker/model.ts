/**
 * The broker's data model: the records the core keeps, persists through the Store port and
 * hands to the cluster and the bridges. Modelled on MQTT 5; 3.1.1 uses a subset.
 */
import type { Properties, ProtocolVersion, QoS, Will } from "../codec/packets.ts";

/** Session expiry value meaning "never expires" (MQTT 5 0xFFFFFFFF). */
export const EXPIRY_NEVER = 0xffffffff;

/**
 * Held deliveries of a message not yet settled, and the publisher's ack waiting for them
 * (volatile.ts); never stored or sent. The hot paths that make messages (a client's PUBLISH, a
 * peer's) put both keys into the object literal: set later, they would give each QoS 1 message a
 * property store of its own (40 bytes); in the literal they cost 16 bytes and nothing more.
 */
export const PENDING_DELIVERIES: unique symbol = Symbol("pendingDeliveries");
export const PUBLISHER_ACK: unique symbol = Symbol("publisherAck");
/** With a PublishAckTarget in PUBLISHER_ACK: the packed ack it gets (see there). */
export const PUBLISHER_ACK_ID: unique symbol = Symbol("publisherAckId");

/**
 * Who a publisher's ack goes to once its message's held deliveries settled (its connection),
 * instead of a closure per message.
 */
export interface PublishAckTarget {
  /** `packed` (packAck): the packet id, its QoS and the 5.0 reason code. */
  ackPublish(packed: number): void;
}

/** An ack in one number: the packet id, the QoS in bits 16-17, the reason code in bits 18-25. */
export function packAck(qos: number, pid: number, code: number): number {
  return pid | (qos << 16) | (code << 18);
}

/** The parts of packAck's number. */
export const ackedId = (packed: number): number => packed & 0xffff;
export const ackedQos = (packed: number): number => (packed >> 16) & 3;
export const ackedCode = (packed: number): number => packed >>> 18;

/** An application message as stored: immutable once created (but for volatile.ts's marks). */
export interface StoredMessage {
  /** Unique id (node id + counter), stable across queues; used for de-duplication. */
  id: string;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 properties carried through (user properties, expiry, content type, ...). */
  properties?: Properties;
  /** ms since epoch, when the broker accepted it. */
  createdAt: number;
  /** ms since epoch after which it must not be delivered (MQTT 5 Message Expiry); absent: never. */
  expiresAt?: number;
  /** Client id of the publisher (for no-local, bridges, logs). */
  origin?: string;
  /** DUP flag of the PUBLISH it arrived in (bridges report it; never persisted). */
  dup?: boolean;
  [PENDING_DELIVERIES]?: number;
  [PUBLISHER_ACK]?: (() => void) | PublishAckTarget;
  [PUBLISHER_ACK_ID]?: number;
}

export interface SessionRecord {
  clientId: string;
  /** Seconds after disconnect that the session lives on; 0 = ends with the connection. */
  expiryInterval: number;
  /** ms since epoch of the last disconnect; null while a connection is attached. */
  disconnectedAt: number | null;
  protocolVersion: ProtocolVersion;
  /**
   * The will: of the connection attached (kept for cluster takeover), or, with `willDueAt`, a 5.0
   * delayed will waiting for its Will Delay Interval after the connection ended; absent if none.
   */
  will?: Will;
  /**
   * ms since epoch when a delayed will is due (MQTT-3.1.3-9); absent while a connection is
   * attached and for wills that are not waiting.
   */
  willDueAt?: number;
  /**
   * Username of the connection the will belongs to, so whoever publishes it (a node that adopts
   * the session, or this one after a restart) authorizes it as that user.
   */
  username?: string;
  /** Node currently owning the session (cluster); absent on a single node. */
  node?: string;
}

export interface SubscriptionRecord {
  filter: string;
  qos: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
  subscriptionId?: number;
}

/**
 * One outbound message of a session, in session order (`seq` ascending).
 * - "queued": not sent yet (offline, or beyond the in-flight window).
 * - "sent": PUBLISH sent with `packetId`, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
 * - "released": PUBREL sent for `packetId`, waiting for PUBCOMP; the message body is no longer
 *   needed but kept so the entry stays self-describing.
 */
export interface OutboundEntry {
  seq: number;
  message: StoredMessage;
  /** QoS it is delivered with (min of message QoS and subscription QoS). */
  qos: QoS;
  /** RETAIN flag it is delivered with. */
  retain: boolean;
  state: "queued" | "sent" | "released";
  packetId?: number;
  /**
   * MQTT 5: the Subscription Identifiers of the session's subscriptions that matched, sent with
   * the PUBLISH (MQTT-3.3.4-3); absent when none had one.
   */
  subscriptionIds?: number[];
  /**
   * The shared subscription (`$share/g/f`) it was delivered through, so that another member gets
   * it if this one leaves. Not persisted: after a restart such entries stay with their session.
   */
  share?: string;
  /** Its place among the deliveries held unwritten (volatile.ts), while held; never stored. */
  heldAt?: number;
}

/** Everything a persistent session needs when it is resumed. */
export interface LoadedSession {
  session: SessionRecord;
  subscriptions: SubscriptionRecord[];
  /** Ordered by seq. */
  outbound: OutboundEntry[];
  /** Packet ids of inbound QoS 2 PUBLISHes received and not yet released by PUBREL. */
  inboundQos2: number[];
  /**
   * The rest of a large queue, still in the store (`outbound` then holds only its oldest page):
   * read page by page after the session is resumed, so a resume never waits for (nor blocks the
   * event loop with) one huge read. Absent: `outbound` is everything.
   */
  rest?: QueueRest;
}

/** The part of a session's stored queue not loaded yet, read oldest first. */
export interface QueueRest {
  /** Entries not read yet. */
  readonly remaining: number;
  /** The highest seq in the stored queue: entries queued from now on are numbered after it. */
  readonly lastSeq: number;
  /** The next page (ordered by seq); empty once everything was read. */
  next(): Promise<OutboundEntry[]>;
}

/** Who a connection is, as authentication, authorization and hooks see it. */
export interface ClientInfo {
  clientId: string;
  username?: string;
  remoteAddress: string;
  transport: string;
  protocolVersion: number;
}
