/**
 * PUBLISH from a client: topic check, QoS 2 de-duplication, authorization, then the message's
 * path through the node (Publisher). The PUBACK/PUBREC goes out once the message is safe: after
 * the store commit, the cluster hand-off and the sinks that hold the ack, and after its volatile
 * deliveries settled.
 */
import { encode } from "../../codec/encoder.ts";
import { ProtocolError } from "../../codec/errors.ts";
import type { Properties, PublishPacket } from "../../codec/packets.ts";
import { ReasonCode } from "../../codec/reason_codes.ts";
import { isWellFormedUtf8 } from "../../codec/utf8.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { encodeReply } from "../replies.ts";
import { messageProperties } from "../messages.ts";
import { packAck, type StoredMessage } from "../model.ts";
import { isSysTopic } from "../sys_topic.ts";
import { isValidTopicName } from "../topic.ts";
import { VolatileDeliveries } from "../volatile.ts";
import { ackWhenDone } from "../ack_waits.ts";
import { HeldAck } from "../held_ack.ts";

/** A client's refused publishes: one log line per burst, with the count, not one per message. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
const refusals = new WeakMap<Client, { count: number; loggedAt: number }>();

function noteRefusal(core: Core, client: Client, topic: string, why: string): void {
  const now = Date.now();
  const r = refusals.get(client) ?? { count: 0, loggedAt: -Infinity };
  r.count++;
  refusals.set(client, r);
  if (now - r.loggedAt < REFUSAL_LOG_INTERVAL_MS) return;
  r.loggedAt = now;
  core.log.info(
    `client ${client.info.clientId} not authorized to publish to ${topic}${why}` +
      (r.count > 1 ? ` (${r.count} refused publishes from this client)` : ""),
  );
}

/**
 * The client sends PUBLISHes faster than `max-publish-rate` allows: it is disconnected (5.0:
 * DISCONNECT 0x96 Message rate too high, 4.13.2; 3.1.1 has no way to say so) and this PUBLISH,
 * not acknowledged, is not routed. Its will is published, as for any server-side close.
 */
function tooFast(core: Core, client: Client): void {
  const o = core.options;
  const why = `more than ${o.maxPublishRate} PUBLISH/s (mqttwk.broker.max-publish-rate)`;
  core.log.warn(`client ${client.info.clientId} sends ${why}; disconnecting`);
  client.close(`publish rate exceeded: ${why}`, true, ReasonCode.MessageRateTooHigh);
}

/** Handles a client's PUBLISH (see the module comment). */
export function handlePublish(core: Core, client: Client, p: PublishPacket): void {
  const rate = client.publishRate;
  if (rate !== null && !rate.take(Date.now())) return tooFast(core, client);
  const s = client.session!;
  // 5.0: the topic alias resolved, Receive Maximum counted (0x94, 0x93).
  const v5 = client.v5;
  if (v5 !== null) v5.receive(p);
  if (p.qos > core.options.maxQos || (p.retain && !core.options.retainAvailable)) refuse(core, p);
  if (!isValidTopicName(p.topic, core.limits)) {
    throw new ProtocolError(
      `invalid topic name ${JSON.stringify(p.topic.slice(0, 100))}`,
      "MQTT-3.3.2-2",
      ReasonCode.TopicNameInvalid,
    );
  }
  core.stats.messagesIn++;
  if (p.qos > 0 && core.persistence.failure !== null) return storeFailing(core, client, p);
  if (p.qos === 2 && s.inboundQos2.has(p.packetId!)) {
    // A resend before PUBREL: already routed once, only the PUBREC is repeated (exactly once).
    client.sendAck(0x50, p.packetId!, true);
    return;
  }
  // 5.0: the message's own properties travel with it (3.3.2.3); 3.1.1 has none.
  let props: Properties | undefined;
  if (v5 !== null && p.properties !== undefined) {
    props = messageProperties(p.properties);
    if (props?.payloadFormatIndicator === 1 && !isWellFormedUtf8(p.payload)) {
      refusePayload(core, client, p);
      return;
    }
  }
  // $SYS is the broker's own (as in Mosquitto): no ACL can open it to clients, while the broker
  // still publishes there through Publisher, which this check does not guard.
  const sys = isSysTopic(p.topic);
  // QoS 2: the packet id and every copy the message is routed to become durable in one commit.
  // Apart, a crash could keep the copies but not the id, and the publisher's resend after the
  // restart would be routed a second time.
  const unit = p.qos === 2;
  if (unit) core.persistence.beginUnit();
  try {
    routeAccepted(core, client, p, props, sys);
  } finally {
    if (unit) core.persistence.endUnit();
  }
}

/** Routes an accepted PUBLISH (unless not authorized) and acknowledges it once it is safe. */
function routeAccepted(
  core: Core,
  client: Client,
  p: PublishPacket,
  props: Properties | undefined,
  sys: boolean,
): void {
  const s = client.session!;
  const v5 = client.v5;
  /** true: a sink holds the ack and acknowledges through a HeldAck. */
  let pending: void | Promise<void> | true = undefined;
  let msg: StoredMessage | undefined;
  /** 5.0 reason code of the PUBACK/PUBREC: 0x10 when nobody subscribes (3.4.2.1). */
  let code = 0;
  const allowed = !sys && core.authorizer.canPublish(client.info, p.topic);
  if (
    allowed && v5 !== null && p.qos > 0 && p.retain &&
    !core.retainer.admits({ topic: p.topic, payload: p.payload, properties: props })
  ) {
    // The retained set is full (max-retained-messages/-bytes): a 5.0 publisher that waits for an
    // ack is told (0x97 Quota exceeded) and the message goes nowhere, so that a failed PUBLISH
    // is not also delivered. Other publishers cannot be told: Retainer.apply delivers theirs
    // without storing it.
    core.retainer.noteRefused(p.topic);
    return refusedV5(client, p, ReasonCode.QuotaExceeded, "retained message limit reached");
  }
  if (allowed) {
    // The payload stays a view into the read buffer; `compact` copies it out only if the
    // message outlives this turn (retained, queued, in flight).
    msg = core.messages.create(
      p.topic,
      p.payload,
      p.qos,
      p.retain,
      client.info.clientId,
      props,
    );
    if (p.dup) msg.dup = true;
    // Only a client's own PUBLISH has an ack that can wait for its deliveries to settle;
    // messages from peers, Kafka or wills rely on the store flush alone.
    if (p.qos === 1 && core.options.durable) VolatileDeliveries.markAckable(msg);
    // A sink that can hold the ack by callback (the Kafka bridge) is spared a promise per message.
    pending = p.qos > 0 && core.publisher.holdsByCallback
      ? core.publisher.publishHeld(
        msg,
        client.info,
        // Holds only what the ack needs, not the packet (its payload is a view into the
        // socket's read chunk); `msg` only when the ack also waits for its deliveries.
        HeldAck.take(
          core,
          client,
          p.topic,
          packAck(p.qos, p.packetId!, 0),
          p.qos === 1 && core.options.durable ? msg : undefined,
        ),
      )
      : core.publisher.publish(msg, client.info);
    // Later deliveries of the same object (as a retained message) have no ack to hold.
    VolatileDeliveries.unmark(msg);
    if (v5 !== null && p.qos > 0 && core.publisher.unrouted(msg)) {
      code = ReasonCode.NoMatchingSubscribers;
    }
  } else {
    noteRefusal(core, client, p.topic, sys ? " (reserved for the broker)" : "");
    // 5.0: PUBACK/PUBREC 0x87, which ends the flow (4.3.3); 3.1.1 has no way to say it: the
    // PUBLISH is acknowledged and dropped.
    if (v5 !== null) {
      return refusedV5(
        client,
        p,
        ReasonCode.NotAuthorized,
        "not authorized to publish to this topic",
      );
    }
  }
  if (p.qos === 0) return;
  const pid = p.packetId!;
  if (p.qos === 2) {
    s.addInboundQos2(pid);
    core.persistence.addInboundQos2(s, pid);
  }
  // The HeldAck acknowledges (code is 0: a message that goes to a sink is routed).
  if (pending === true) return;
  const qos = p.qos;
  if (pending) {
    // What waits (another node, Kafka: milliseconds, thousands at a time) holds only what the
    // ack needs. The message and the packet, whose payload is a view into the socket's read
    // chunk, are let go at once unless the ack waits for the message's deliveries (markAckable
    // above), instead of surviving the young generation each.
    const held = msg !== undefined && qos === 1 && core.options.durable ? msg : undefined;
    ackWhenDone(core, pending, client, qos, pid, code, held, p.topic);
  } else core.volatile.ackWhenSettled(msg, client, packAck(qos, pid, code));
}

/** When the last "store unavailable" refusal was logged: one line per burst. */
let storeRefusalLoggedAt = -Infinity;
let storeRefusals = 0;

/**
 * A QoS 1/2 PUBLISH while the store cannot commit (a full disk): refused, not routed, so that
 * the publisher's resends cannot pile up as duplicates that would fill the disk again. A 5.0
 * publisher gets PUBACK/PUBREC 0x97 (Quota exceeded), which ends that flow; a 3.1.1 publisher,
 * which has no way to hear a refusal, and a QoS 2 resend whose first copy is still waiting for
 * the store, are disconnected unacknowledged (5.0: DISCONNECT 0x97) and resend once they are
 * back. New persistent sessions get CONNACK 0x97 / 0x03 meanwhile (handlers/connect.ts).
 */
function storeFailing(core: Core, client: Client, p: PublishPacket): void {
  const why = core.persistence.failure!;
  storeRefusals++;
  const now = Date.now();
  if (now - storeRefusalLoggedAt >= REFUSAL_LOG_INTERVAL_MS) {
    storeRefusalLoggedAt = now;
    core.log.warn(
      `store unavailable (${why}): refusing QoS 1/2 PUBLISHes until it recovers ` +
        `(${storeRefusals} refused so far)`,
    );
  }
  const pid = p.packetId!;
  const v5 = client.v5;
  const known = p.qos === 2 && client.session!.inboundQos2.has(pid);
  if (v5 !== null && !known) {
    if (p.qos === 1) v5.acknowledged();
    else v5.completed(pid);
    client.sendAck(p.qos === 1 ? 0x40 : 0x50, pid, false, ReasonCode.QuotaExceeded);
    return;
  }
  // Its will is not published: the client did nothing wrong and is asked to come back.
  client.close(`store unavailable: ${why}`, false, ReasonCode.QuotaExceeded);
}

/**
 * A 5.0 PUBLISH refused: PUBACK/PUBREC with `reasonCode` (0x87 not authorized, 0x97 quota
 * exceeded; QoS 2: no PUBREL follows, so the packet id is free at once), with a reason string if
 * the client allows problem information.
 */
function refusedV5(
  client: Client,
  p: PublishPacket,
  reasonCode: number,
  reasonString: string,
): void {
  const v5 = client.v5!;
  if (p.qos === 0) return;
  const pid = p.packetId!;
  if (p.qos === 1) v5.acknowledged();
  else v5.completed(pid);
  const type = p.qos === 1 ? "puback" : "pubrec";
  if (v5.problemInformation) {
    // The reason string only if it fits the client's Maximum Packet Size (MQTT-3.4.2-2).
    const ack = encodeReply(client, {
      type,
      packetId: pid,
      reasonCode,
      properties: { reasonString },
    });
    if (ack !== null) client.send(ack, true);
  } else client.sendAck(p.qos === 1 ? 0x40 : 0x50, pid, true, reasonCode);
}

/** A PUBLISH above Maximum QoS (MQTT-3.2.2-11: 0x9B) or retained while retain is off (0x9A). */
function refuse(core: Core, p: PublishPacket): never {
  if (p.qos > core.options.maxQos) {
    throw new ProtocolError(
      `PUBLISH at QoS ${p.qos} above the maximum QoS ${core.options.maxQos}`,
      "MQTT-3.2.2-11",
      ReasonCode.QoSNotSupported,
    );
  }
  throw new ProtocolError(
    "retained PUBLISH while retain is not available",
    "MQTT-3.2.2-14",
    ReasonCode.RetainNotSupported,
  );
}

/**
 * A PUBLISH whose Payload Format Indicator says UTF-8 over a payload that is not well-formed
 * UTF-8 (3.3.2.3.2): not routed. QoS 1/2 are answered PUBACK/PUBREC 0x99, which ends the flow
 * (no PUBREL follows a failed PUBREC, so its packet id and Receive Maximum slot are free at
 * once). QoS 0 has no acknowledgement: it is dropped and the connection stays, as a refused QoS 0
 * PUBLISH is; a DISCONNECT 0x99 would also cost the client its other traffic. (Mosquitto 2 and
 * EMQX 5 do not check the payload at all and forward it.)
 */
function refusePayload(core: Core, client: Client, p: PublishPacket): void {
  core.log.info(
    `client ${client.info.clientId}: PUBLISH to ${p.topic} with Payload Format Indicator 1 ` +
      `and a payload that is not valid UTF-8; not forwarded`,
  );
  if (p.qos === 0) return;
  const v5 = client.v5!;
  const packetId = p.packetId!;
  if (p.qos === 1) v5.acknowledged();
  else v5.completed(packetId);
  const reasonCode = ReasonCode.PayloadFormatInvalid;
  client.send(
    encode({ type: p.qos === 1 ? "puback" : "pubrec", packetId, reasonCode }, 5),
    // Behind the acks still waiting for the store, so acks keep the PUBLISHes' order.
    true,
  );
}
