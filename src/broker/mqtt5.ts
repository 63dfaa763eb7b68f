/**
 * The state only an MQTT 5.0 connection has, in one object created for 5.0 connections alone
 * (ClientOutput.v5 is null for 3.1/3.1.1, which then pay nothing for it): what the client told us
 * in CONNECT (its Receive Maximum, Maximum Packet Size, Topic Alias Maximum), the topic aliases
 * of both directions, and the count of its unacknowledged QoS 1/2 PUBLISHes (our Receive
 * Maximum).
 */
import {
  type MessagePropertyBytes,
  NO_MESSAGE_PROPERTIES,
  publishPropertiesLengthV5,
  publishSizeV5,
  writePublishV5,
} from "../codec/encoder.ts";
import { ProtocolError } from "../codec/errors.ts";
import type { Properties, PublishPacket, QoS } from "../codec/packets.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import { utf8Length } from "../codec/utf8.ts";
import { remainingExpiry } from "./messages.ts";
import type { StoredMessage } from "./model.ts";
import {
  encodePublishV5,
  expiringTemplate,
  messagePropertyBytes,
  type PublishTemplate,
  publishTemplate,
  publishTemplateWithIds,
} from "./outgoing.ts";
import type { AuthExchange } from "./ports/auth.ts";
import { isValidTopicName } from "./topic.ts";

/** The largest packet MQTT can express: 1 + 4 length bytes + 268 435 455. */
const PROTOCOL_MAX_PACKET = 268_435_460;

export interface Mqtt5Limits {
  /** Our Receive Maximum (inbound QoS 1/2 window). */
  receiveMaximum: number;
  /** Our Topic Alias Maximum (aliases the client may set). */
  topicAliasMaximum: number;
}

export class Mqtt5Connection {
  /** The client's Maximum Packet Size: nothing larger is sent to it (MQTT-3.1.2-24). */
  readonly maxPacketSize: number;
  /** The client's Topic Alias Maximum: aliases we may use towards it (MQTT-3.1.2-26/-27). */
  readonly clientAliasMaximum: number;
  /** The client's Receive Maximum: our in-flight window towards it (MQTT-3.3.4-9). */
  readonly clientReceiveMaximum: number;
  /** Request Problem Information: reason strings / user properties allowed on other packets. */
  readonly problemInformation: boolean;
  /** The Session Expiry Interval the CONNECT carried (0 if absent), for MQTT-3.14.2-2. */
  readonly connectExpiry: number;
  readonly #limits: Mqtt5Limits;
  /** The CONNECT's Authentication Method, which a re-authentication must repeat (4.12.1). */
  authMethod: string | undefined;
  /** A re-authentication in progress (handlers/auth.ts); `busy` while a step is computed. */
  reauth: { exchange: AuthExchange; busy: boolean } | null = null;

  /** Aliases the client set (alias → topic), created on the first one. */
  #inbound: Map<number, string> | null = null;
  /** Aliases we set towards the client (topic → alias), least recently used first. */
  #outbound: Map<string, number> | null = null;
  #nextAlias = 1;
  /** The topic whose alias was used last (the newest entry of #outbound). */
  #lastAliased: string | null = null;
  /** The shared PUBLISH prepare() chose, or null when it prepared one to write in place. */
  preparedTemplate: PublishTemplate | null = null;
  /** Bytes of the PUBLISH prepare() chose to write in place. */
  preparedSize = 0;
  // The values of the PUBLISH to write in place (fields, not an object per delivery).
  #pMsg: StoredMessage | null = null;
  #pQos: QoS = 0;
  #pRetain = false;
  #pTopic = "";
  #pTopicBytes = 0;
  #pProps: MessagePropertyBytes = NO_MESSAGE_PROPERTIES;
  #pPropsLength = 0;
  #pExpiry = -1;
  #pIds: number[] | null = null;
  #pAlias = 0;

  /** QoS 1 PUBLISHes received on this connection and not answered with PUBACK yet. */
  #unacked1 = 0;
  /** QoS 2 packet ids received on this connection and not answered with PUBCOMP yet. */
  #unacked2: Set<number> | null = null;

  constructor(connect: Properties | undefined, limits: Mqtt5Limits) {
    this.maxPacketSize = connect?.maximumPacketSize ?? PROTOCOL_MAX_PACKET;
    this.clientAliasMaximum = connect?.topicAliasMaximum ?? 0;
    this.clientReceiveMaximum = connect?.receiveMaximum ?? 65535;
    this.problemInformation = (connect?.requestProblemInformation ?? 1) === 1;
    this.connectExpiry = connect?.sessionExpiryInterval ?? 0;
    this.#limits = limits;
  }

  // ------------------------------------------------------------------ inbound

  /**
   * Checks a PUBLISH from the client before it is handled: the topic alias is resolved (the
   * packet's topic is filled in), and our Receive Maximum is counted. Throws ProtocolError for
   * what must end the connection.
   */
  receive(p: PublishPacket): void {
    const props = p.properties;
    if (props !== undefined) {
      if (props.subscriptionIdentifiers !== undefined) {
        // MQTT-3.3.4-6: a client's PUBLISH must not carry a Subscription Identifier.
        throw new ProtocolError(
          "PUBLISH from a client with a Subscription Identifier",
          "MQTT-3.3.4-6",
          ReasonCode.ProtocolError,
        );
      }
      const alias = props.topicAlias;
      if (alias !== undefined) this.#resolveAlias(p, alias);
      const response = props.responseTopic;
      if (response !== undefined && !isValidTopicName(response)) {
        // MQTT-3.3.2-14: a Response Topic is a topic name, without wildcards (EMQX answers a
        // violation the same way: DISCONNECT 0x82; PUBACK has no Protocol Error code).
        throw new ProtocolError(
          `invalid Response Topic ${JSON.stringify(response.slice(0, 100))}`,
          "MQTT-3.3.2-14",
          ReasonCode.ProtocolError,
        );
      }
    }
    if (p.qos === 0) return;
    const max = this.#limits.receiveMaximum;
    if (p.qos === 2) {
      const ids = this.#unacked2 ??= new Set();
      // A resend of an id still waiting for PUBREL takes no new slot.
      if (ids.has(p.packetId!)) return;
      if (this.#unacked1 + ids.size >= max) this.#receiveMaximumExceeded(max);
      ids.add(p.packetId!);
    } else {
      if (this.#unacked1 + (this.#unacked2?.size ?? 0) >= max) {
        this.#receiveMaximumExceeded(max);
      }
      this.#unacked1++;
    }
  }

  /** A PUBACK went to the client: one more QoS 1 PUBLISH may come. */
  acknowledged(): void {
    if (this.#unacked1 > 0) this.#unacked1--;
  }

  /** A PUBCOMP for `packetId` went to the client. */
  completed(packetId: number): void {
    this.#unacked2?.delete(packetId);
  }

  #receiveMaximumExceeded(max: number): never {
    // MQTT-3.3.4-7 (the client's duty); the server answers with DISCONNECT 0x93 (3.3.4).
    throw new ProtocolError(
      `more than Receive Maximum (${max}) unacknowledged QoS 1/2 PUBLISHes`,
      "MQTT-3.3.4-7",
      ReasonCode.ReceiveMaximumExceeded,
    );
  }

  #resolveAlias(p: PublishPacket, alias: number): void {
    const max = this.#limits.topicAliasMaximum;
    if (alias === 0 || alias > max) {
      // MQTT-3.3.2-8 / -9: 0 and values above our Topic Alias Maximum are invalid (0x94).
      throw new ProtocolError(
        `topic alias ${alias} outside 1..${max}`,
        alias === 0 ? "MQTT-3.3.2-8" : "MQTT-3.3.2-9",
        ReasonCode.TopicAliasInvalid,
      );
    }
    if (p.topic.length > 0) {
      // MQTT-3.3.2-12 / 3.3.2.3.4: a topic with an alias sets (or replaces) the mapping.
      (this.#inbound ??= new Map()).set(alias, p.topic);
    } else {
      const topic = this.#inbound?.get(alias);
      if (topic === undefined) {
        // 3.3.2.3.4: an empty topic with an alias that has no mapping is a Protocol Error.
        throw new ProtocolError(
          `topic alias ${alias} has no topic on this connection`,
          "3.3.2.3.4",
          ReasonCode.ProtocolError,
        );
      }
      p.topic = topic;
    }
  }

  // ------------------------------------------------------------------ outbound

  /**
   * Prepares the PUBLISH of `msg` for this client, which ClientOutput.sendPrepared then sends
   * with its packet id; false when it is larger than the client's Maximum Packet Size
   * (MQTT-3.1.2-24: discarded, not sent).
   *
   * Topic aliases (when the client allows them): each topic gets an alias when first sent,
   * carried with the full topic; later QoS 0/1 PUBLISHes of that topic carry the alias and an
   * empty topic. When all aliases are in use, the least recently used one is reassigned (sent again
   * with its new full topic, which replaces the client's mapping, 3.3.2.3.4).
   *
   * A message with an expiry that waited (queued, retained, resent) carries the remaining
   * interval (MQTT-3.3.2-6); callers have already dropped expired ones. `subscriptionIds`: the
   * identifiers of the subscriptions it is delivered for (MQTT-3.3.4-3).
   *
   * A PUBLISH with an alias, or for a message no other client receives now (`single`), is
   * written straight into the output buffer (no buffer of its own, no object per delivery);
   * others share the message's encoding with every subscriber (preparedTemplate).
   */
  prepare(
    msg: StoredMessage,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | null = null,
    single = false,
  ): boolean {
    const expiry = msg.expiresAt === undefined ? undefined : remainingExpiry(msg, Date.now());
    const max = this.clientAliasMaximum;
    this.#pMsg = null;
    if (max === 0 && !single) {
      const t = this.preparedTemplate = this.#shared(msg, qos, retain, expiry, subscriptionIds);
      return t !== null;
    }
    this.preparedTemplate = null;
    const props = messagePropertyBytes(msg);
    const exp = expiry ?? -1;
    const payloadLength = msg.payload.byteLength;
    let topic = msg.topic;
    let alias = 0;
    let evict: string | undefined;
    let known = false;
    if (max > 0) {
      const aliases = this.#outbound ??= new Map();
      const a = aliases.get(topic);
      if (a !== undefined) {
        alias = a;
        known = true;
        // A QoS 2 PUBLISH always carries its topic too (with the alias, which the client then
        // simply maps again): mqtt.js 5.16 keeps the unresolved packet of a QoS 2 flow and
        // reports an empty topic at PUBREL. A few bytes more for QoS 2 only.
        if (qos !== 2) topic = "";
      } else if (this.#nextAlias <= max) alias = this.#nextAlias;
      else {
        const oldest = aliases.entries().next().value as [string, number];
        evict = oldest[0];
        alias = oldest[1];
      }
    }
    let topicBytes = topic === "" ? 0 : utf8Length(topic);
    let propsLength = publishPropertiesLengthV5(props, exp, subscriptionIds, alias);
    let size = publishSizeV5(topicBytes, payloadLength, qos, propsLength);
    if (size > this.maxPacketSize) {
      if (alias === 0) return false;
      // Not sent with the alias, so no mapping changes; without it, it may still fit.
      alias = 0;
      topic = msg.topic;
      topicBytes = utf8Length(topic);
      propsLength = publishPropertiesLengthV5(props, exp, subscriptionIds, 0);
      size = publishSizeV5(topicBytes, payloadLength, qos, propsLength);
      if (size > this.maxPacketSize) return false;
    } else if (alias > 0) this.#used(msg.topic, alias, known, evict);
    this.#pMsg = msg;
    this.#pQos = qos;
    this.#pRetain = retain;
    this.#pTopic = topic;
    this.#pTopicBytes = topicBytes;
    this.#pProps = props;
    this.#pPropsLength = propsLength;
    this.#pExpiry = exp;
    this.#pIds = subscriptionIds;
    this.#pAlias = alias;
    this.preparedSize = size;
    return true;
  }

  /** Records that `alias` goes out for `topic` (assigned, reassigned or used again). */
  #used(topic: string, alias: number, known: boolean, evict: string | undefined): void {
    const aliases = this.#outbound!;
    if (known) {
      // Most recently used goes last; the topic used last already is (the common case: a
      // subscriber that gets one topic pays no map update per delivery).
      if (topic === this.#lastAliased) return;
      aliases.delete(topic);
    } else if (evict !== undefined) aliases.delete(evict);
    else this.#nextAlias++;
    aliases.set(topic, alias);
    this.#lastAliased = topic;
  }

  /**
   * Writes the PUBLISH prepare() chose to write in place at `pos` of `buf` (which has
   * preparedSize bytes of room there) with `packetId`; returns the end position.
   */
  writePrepared(buf: Uint8Array, pos: number, packetId: number, dup: boolean): number {
    const msg = this.#pMsg;
    if (msg === null) throw new Error("no PUBLISH prepared to be written in place");
    const ids = this.#pIds;
    // Not kept past the write: the message may be long gone before the next delivery.
    this.#pMsg = null;
    this.#pIds = null;
    return writePublishV5(
      buf,
      pos,
      this.#pTopic,
      this.#pTopicBytes,
      msg.payload,
      this.#pQos,
      this.#pRetain,
      dup,
      packetId,
      this.#pProps,
      this.#pPropsLength,
      this.#pExpiry,
      ids,
      this.#pAlias,
    );
  }

  /**
   * The PUBLISH shared by every 5.0 subscriber (no alias), if it fits; `expiry`: the remaining
   * interval of a message that waited (shared by the deliveries of the same second).
   */
  #shared(
    msg: StoredMessage,
    qos: QoS,
    retain: boolean,
    expiry: number | undefined,
    subscriptionIds: number[] | null,
  ): PublishTemplate | null {
    let t: PublishTemplate;
    if (subscriptionIds === null) {
      t = expiry === undefined
        ? publishTemplate(msg, 5, qos, retain)
        : expiringTemplate(msg, qos, retain, expiry);
    } else {
      // Identifiers and a waited expiry together are rare enough to be encoded per delivery.
      t = expiry === undefined
        ? publishTemplateWithIds(msg, qos, retain, subscriptionIds)
        : encodePublishV5(msg, qos, retain, {
          messageExpiryInterval: expiry,
          subscriptionIdentifiers: subscriptionIds,
        });
    }
    return t.bytes.byteLength > this.maxPacketSize ? null : t;
  }
}
