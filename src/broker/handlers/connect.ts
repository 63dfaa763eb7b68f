/**
 * CONNECT: protocol level and client id checks, authentication, session attach (new, resumed or
 * taken over), CONNACK, then the resend of what was in flight and the packets pipelined behind
 * CONNECT. A refused CONNECT is answered with its CONNACK code and the connection closed.
 */
import { encode } from "../../codec/encoder.ts";
import { ProtocolError } from "../../codec/errors.ts";
import type { ConnectPacket, ProtocolVersion } from "../../codec/packets.ts";
import { ConnackReturnCode, ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { isValidTopicName } from "../topic.ts";

export async function handleConnect(core: Core, client: Client, p: ConnectPacket): Promise<void> {
  const level = p.protocolVersion as number;
  const nameOk = (level === 3 && p.protocolName === "MQIsdp") ||
    ((level === 4 || level === 5) && p.protocolName === "MQTT");
  if (level === 5) {
    // The codec speaks 5.0; the core answers it once MQTT 5 is switched on.
    client.version = 5;
    client.refuseConnect(ReasonCode.UnsupportedProtocolVersion, "MQTT 5.0 is not enabled yet");
    return;
  }
  if (!nameOk || (level !== 3 && level !== 4)) {
    // MQTT-3.1.2-2: unacceptable protocol level -> 0x01 and close.
    client.refuseConnect(
      ConnackReturnCode.UnacceptableProtocolVersion,
      `unsupported protocol ${JSON.stringify(p.protocolName)} level ${level}`,
    );
    return;
  }
  client.version = level as ProtocolVersion;
  client.info.protocolVersion = level;
  if (client.refuse !== null) {
    client.refuseConnect(client.refuse, "connection limit reached");
    return;
  }
  let clientId = p.clientId;
  if (clientId.length === 0) {
    if (level === 3) {
      // MQTT 3.1 has no server-assigned identifiers (1 to 23 characters); Mosquitto refuses
      // them the same way. Longer ones are accepted, as Mosquitto and 3.1.1 (3.1.3-5) do.
      client.refuseConnect(ConnackReturnCode.IdentifierRejected, "MQTT 3.1 requires a client id");
      return;
    }
    if (!p.clean) {
      // MQTT-3.1.3-8: zero-length id with clean session 0 -> 0x02 and close.
      client.refuseConnect(
        ConnackReturnCode.IdentifierRejected,
        "zero-length client id requires clean session",
      );
      return;
    }
    clientId = core.sessions.assignClientId();
  }
  client.info.clientId = clientId;
  client.info.username = client.conn.username ?? p.username;
  if (p.will && !isValidTopicName(p.will.topic, core.limits)) {
    throw new ProtocolError("invalid will topic", "MQTT-3.1.2-9", ReasonCode.TopicNameInvalid);
  }
  const auth = await core.authenticator.authenticate({ ...client.info, password: p.password });
  if (client.isClosed) return;
  if (!auth.ok) {
    client.refuseConnect(auth.reasonCode, auth.reason ?? "authentication failed");
    return;
  }
  client.will = p.will;
  client.keepalive = p.keepalive;
  // A username nobody checked (authentication off, or allowed without a password) proves
  // nothing: such clients count against their address for the session limits.
  const verifiedUser = client.conn.username ??
    (auth.verified ? client.info.username : undefined);
  const sessionPresent = await core.sessions.attach(client, p, verifiedUser);
  if (client.isClosed) return;
  if (sessionPresent === null) {
    // Sessions.refusal logged it, at most once a second: a flood must not flood the log.
    client.refuseConnect(ConnackReturnCode.ServerUnavailable, "session limit reached", false);
    return;
  }
  client.state = "connected";
  client.send(encode({ type: "connack", sessionPresent, reasonCode: 0 }, client.version));
  client.armKeepalive();
  core.log.info(
    `client ${clientId} connected from ${client.info.remoteAddress} via ${client.conn.transport}` +
      ` (v${level === 3 ? "3.1" : "3.1.1"}, clean=${p.clean}, keepalive=${p.keepalive}s,` +
      ` session present=${sessionPresent})`,
  );
  core.delivery.resume(client.session!);
  client.drainBacklog();
}
