/**
 * CONNECT: protocol level and client id checks, authentication (a password, or the enhanced
 * exchange of auth.ts), session attach (new, resumed or
 * taken over), CONNACK, then the resend of what was in flight and the packets pipelined behind
 * CONNECT. A refused CONNECT is answered with its CONNACK code and the connection closed.
 */
import { encode } from "../../codec/encoder.ts";
import { ProtocolError } from "../../codec/errors.ts";
import type { ConnectPacket, Properties, ProtocolVersion } from "../../codec/packets.ts";
import { ConnackReturnCode, ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { Mqtt5Connection } from "../mqtt5.ts";
import { isValidTopicName } from "../topic.ts";
import { authenticateConnect, type EnhancedAuthSuccess } from "./auth.ts";

export async function handleConnect(core: Core, client: Client, p: ConnectPacket): Promise<void> {
  const level = p.protocolVersion as number;
  const nameOk = (level === 3 && p.protocolName === "MQIsdp") ||
    ((level === 4 || level === 5) && p.protocolName === "MQTT");
  if (!nameOk || (level !== 3 && level !== 4 && level !== 5)) {
    // MQTT-3.1.2-2: unacceptable protocol level -> 0x01 and close.
    client.refuseConnect(
      ConnackReturnCode.UnacceptableProtocolVersion,
      `unsupported protocol ${JSON.stringify(p.protocolName)} level ${level}`,
    );
    return;
  }
  client.version = level as ProtocolVersion;
  client.info.protocolVersion = level;
  const v5 = level === 5;
  // The client's Maximum Packet Size also bounds our refusals (MQTT-3.2.2-19).
  const clientMax = v5 ? p.properties?.maximumPacketSize ?? 0 : 0;
  if (client.refuse !== null) {
    client.refuseConnect(client.refuse, "connection limit reached", clientMax);
    return;
  }
  let clientId = p.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    if (level === 3) {
      // MQTT 3.1 has no server-assigned identifiers (1 to 23 characters); Mosquitto refuses
      // them the same way. Longer ones are accepted, as Mosquitto and 3.1.1 (3.1.3-5) do.
      client.refuseConnect(ConnackReturnCode.IdentifierRejected, "MQTT 3.1 requires a client id");
      return;
    }
    if (!p.clean && !v5) {
      // MQTT-3.1.3-8: zero-length id with clean session 0 -> 0x02 and close. (5.0 assigns one
      // whatever Clean Start says, MQTT-3.1.3-6.)
      client.refuseConnect(
        ConnackReturnCode.IdentifierRejected,
        "zero-length client id requires clean session",
      );
      return;
    }
    clientId = core.sessions.assignClientId();
    assigned = true;
  }
  client.info.clientId = clientId;
  client.info.username = client.conn.username ?? p.username;
  if (p.will && !isValidTopicName(p.will.topic, core.limits)) {
    if (v5) {
      client.refuseConnect(ReasonCode.TopicNameInvalid, "invalid will topic", clientMax);
      return;
    }
    throw new ProtocolError("invalid will topic", "MQTT-3.1.2-9", ReasonCode.TopicNameInvalid);
  }
  const refusal = checkCapabilities(core, p);
  if (refusal) {
    client.refuseConnect(refusal[0], refusal[1], clientMax);
    return;
  }
  let enhanced: EnhancedAuthSuccess | null = null;
  let verified: boolean | undefined;
  if (v5 && p.properties?.authenticationMethod !== undefined) {
    // Enhanced authentication replaces the password check: the method proves the user.
    enhanced = await authenticateConnect(core, client, p, clientMax);
    if (enhanced === null) return;
    client.info.username = enhanced.username;
    verified = true;
  } else {
    const checked = core.authenticator.authenticate({ ...client.info, password: p.password });
    // Awaited only when it is a promise: a CONNECT answered in the turn it arrived in costs no
    // microtask hops, and its connection is not paused (Client.#onPacket).
    const auth = checked instanceof Promise ? await checked : checked;
    if (client.isClosed) return;
    if (!auth.ok) {
      client.refuseConnect(auth.reasonCode, auth.reason ?? "authentication failed", clientMax);
      return;
    }
    verified = auth.verified;
  }
  client.will = p.will;
  client.keepalive = p.keepalive;
  let properties: Properties | undefined;
  if (v5) {
    const o = core.options;
    client.v5 = new Mqtt5Connection(p.properties, o);
    client.inflightWindow = Math.min(o.maxInflight, client.v5.clientReceiveMaximum);
    properties = connackProperties(core, p, assigned ? clientId : undefined);
    if (enhanced !== null) {
      // MQTT-4.12.0-5: the successful CONNACK repeats the method, with the server's last data.
      client.v5.authMethod = enhanced.method;
      properties.authenticationMethod = enhanced.method;
      if (enhanced.data !== undefined) properties.authenticationData = enhanced.data;
    }
    if (properties.serverKeepAlive !== undefined) client.keepalive = properties.serverKeepAlive;
    if (!fitConnack(properties, clientMax)) {
      // MQTT-3.1.2-24: no CONNACK may exceed the client's Maximum Packet Size, and every one
      // that tells the client this server's limits does. Refused before any session is touched
      // (0x95; refuseConnect sends nothing at all when even that bare CONNACK does not fit).
      client.refuseConnect(
        ReasonCode.PacketTooLarge,
        `Maximum Packet Size ${clientMax} cannot hold the CONNACK`,
        clientMax,
      );
      return;
    }
  }
  // A username nobody checked (authentication off, or allowed without a password) proves
  // nothing: such clients count against their address for the session limits.
  const verifiedUser = client.conn.username ?? (verified ? client.info.username : undefined);
  if (
    core.persistence.failure !== null && core.sessions.expiryFor(p) > 0 &&
    !core.sessions.map.has(clientId)
  ) {
    // A new persistent session needs the store, which cannot commit now (a full disk).
    client.refuseConnect(
      v5 ? ReasonCode.QuotaExceeded : ConnackReturnCode.ServerUnavailable,
      `store unavailable (${core.persistence.failure})`,
      clientMax,
      false, // a reconnecting fleet would flood the log; the PUBLISH refusals are logged
    );
    return;
  }
  const attached = core.sessions.attach(client, p, verifiedUser);
  const sessionPresent = attached instanceof Promise ? await attached : attached;
  if (client.isClosed) return;
  if (sessionPresent === null) {
    // Sessions.refusal logged it, at most once a second: a flood must not flood the log.
    client.refuseConnect(
      ConnackReturnCode.ServerUnavailable,
      "session limit reached",
      clientMax,
      false,
    );
    return;
  }
  client.state = "connected";
  if (v5) client.send(encode({ type: "connack", sessionPresent, reasonCode: 0, properties }, 5));
  else client.sendConnackAccepted(sessionPresent);
  client.armKeepalive();
  if (core.log.enabled("info")) {
    core.log.info(
      `client ${clientId} connected from ${client.info.remoteAddress} via ` +
        `${client.conn.transport} (v${level === 3 ? "3.1" : level === 4 ? "3.1.1" : "5.0"},` +
        ` clean=${p.clean}, keepalive=${client.keepalive}s, session present=${sessionPresent})`,
    );
  }
  core.delivery.resume(client.session!);
  client.drainBacklog();
}

/**
 * Whether the successful CONNACK with `properties` fits the client's Maximum Packet Size
 * (0 = none given), once the optional Response Information is dropped if need be (MQTT-3.1.2-24).
 * Its size does not depend on Session Present.
 */
function fitConnack(properties: Properties, clientMax: number): boolean {
  if (clientMax === 0) return true;
  const size = () =>
    encode({ type: "connack", sessionPresent: false, reasonCode: 0, properties }, 5).byteLength;
  if (size() <= clientMax) return true;
  delete properties.responseInformation;
  return size() <= clientMax;
}

/**
 * What this server cannot do for the CONNECT, as a CONNACK code and why: a will above Maximum
 * QoS or retained while retain is unavailable.
 */
function checkCapabilities(core: Core, p: ConnectPacket): [number, string] | null {
  const v5 = p.protocolVersion === 5;
  const o = core.options;
  if (p.will && p.will.qos > o.maxQos) {
    // MQTT-3.2.2-12: a will QoS above Maximum QoS -> 0x9B (3.1.1 has no code: not authorized).
    return [
      v5 ? ReasonCode.QoSNotSupported : ConnackReturnCode.NotAuthorized,
      `will QoS ${p.will.qos} above the maximum QoS ${o.maxQos}`,
    ];
  }
  if (p.will?.retain && !o.retainAvailable) {
    // MQTT-3.2.2-13: a retained will when retain is unavailable -> 0x9A.
    return [
      v5 ? ReasonCode.RetainNotSupported : ConnackReturnCode.NotAuthorized,
      "retained will while retain is not available",
    ];
  }
  return null;
}

/**
 * The properties of a successful 5.0 CONNACK: every limit that differs from the protocol's
 * default, said truthfully (3.2.2.3).
 */
function connackProperties(core: Core, p: ConnectPacket, assignedId?: string): Properties {
  const o = core.options;
  const asked = p.properties;
  const props: Properties = {};
  const expiry = core.sessions.expiryFor(p);
  // 3.2.2.3.2: the CONNACK says so when the server uses another expiry than asked for.
  if (expiry !== (asked?.sessionExpiryInterval ?? 0)) props.sessionExpiryInterval = expiry;
  if (o.receiveMaximum < 65535) props.receiveMaximum = o.receiveMaximum;
  if (o.maxQos < 2) props.maximumQoS = o.maxQos;
  if (!o.retainAvailable) props.retainAvailable = 0;
  props.maximumPacketSize = o.maxPacketSize;
  // MQTT-3.2.2-16: an identifier the server assigned is returned.
  if (assignedId !== undefined) props.assignedClientIdentifier = assignedId;
  if (o.topicAliasMaximum > 0) props.topicAliasMaximum = o.topicAliasMaximum;
  // 1 is the default for both and is not sent for wildcards; Subscription Identifiers are said
  // outright, as EMQX does, since clients written against brokers without them look for it.
  if (!o.wildcardSubscriptionAvailable) props.wildcardSubscriptionAvailable = 0;
  props.subscriptionIdentifiersAvailable = o.subscriptionIdentifiersAvailable ? 1 : 0;
  if (!o.sharedSubscriptionAvailable) props.sharedSubscriptionAvailable = 0;
  if (o.maxKeepalive > 0 && (p.keepalive === 0 || p.keepalive > o.maxKeepalive)) {
    // MQTT-3.2.2-21: the client must then use the Server Keep Alive.
    props.serverKeepAlive = o.maxKeepalive;
  }
  if (asked?.requestResponseInformation === 1 && o.responseInformation !== "") {
    // Only when asked for (3.1.2.11.6), as EMQX does with its response_information.
    props.responseInformation = o.responseInformation;
  }
  return props;
}
