/**
 * AUTH and enhanced authentication (MQTT 5.0 4.12): the exchange a CONNECT with an
 * Authentication Method starts, before CONNACK, and the re-authentication of a connected client
 * (AUTH 0x19). The method itself (SCRAM, ...) is behind the EnhancedAuthenticator port.
 */
import { encode } from "../../codec/encoder.ts";
import { ProtocolError } from "../../codec/errors.ts";
import type { AuthPacket, ConnectPacket, Properties } from "../../codec/packets.ts";
import { ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import type { AuthExchange } from "../ports/auth.ts";

/** What a successful exchange proved and the server's last word for the CONNACK. */
export interface EnhancedAuthSuccess {
  method: string;
  username: string;
  data?: Uint8Array;
}

/** An AUTH packet towards the client, or null when it exceeds `maxPacketSize` (0 = no limit). */
function authPacket(
  reasonCode: number,
  method: string,
  data: Uint8Array | undefined,
  maxPacketSize: number,
): Uint8Array | null {
  const properties: Properties = { authenticationMethod: method };
  if (data !== undefined) properties.authenticationData = data;
  const bytes = encode({ type: "auth", reasonCode, properties }, 5);
  // MQTT-3.1.2-24: nothing larger than the client's Maximum Packet Size is sent to it.
  return maxPacketSize > 0 && bytes.byteLength > maxPacketSize ? null : bytes;
}

/**
 * Runs the exchange of a CONNECT that names an Authentication Method: AUTH 0x18 both ways
 * (MQTT-4.12.0-2/-3) until the authenticator decides. The client reads nothing else meanwhile;
 * anything but AUTH or DISCONNECT from it is a protocol error (MQTT-3.1.2-30). Resolves null
 * when the CONNECT was refused (CONNACK sent) or the connection is gone.
 */
export async function authenticateConnect(
  core: Core,
  client: Client,
  p: ConnectPacket,
  clientMax: number,
): Promise<EnhancedAuthSuccess | null> {
  const method = p.properties!.authenticationMethod!;
  const enhanced = core.enhancedAuthenticator;
  if (enhanced === undefined || !enhanced.methods.includes(method)) {
    // MQTT-4.12.0-1: an unsupported method -> 0x8C and close.
    client.refuseConnect(
      ReasonCode.BadAuthenticationMethod,
      `authentication method ${JSON.stringify(method)} is not supported`,
      clientMax,
    );
    return null;
  }
  const exchange = enhanced.start({ ...client.info, method, reauthenticate: false });
  let data = p.properties?.authenticationData;
  const timeout = core.options.connectTimeout * 1000;
  for (;;) {
    const step = await exchange.step(data);
    if (client.isClosed) return null;
    if (step.status === "failure") {
      // MQTT-4.12.0-4: refused at any point with a CONNACK code >= 0x80, then closed.
      client.refuseConnect(step.reasonCode, step.reason, clientMax);
      return null;
    }
    if (step.status === "success") {
      const claimed = client.info.username;
      if (claimed !== undefined && claimed !== step.username) {
        // Topic rules and session limits go by the username: it must be the one proven.
        client.refuseConnect(
          ReasonCode.NotAuthorized,
          `user name ${JSON.stringify(claimed)} is not the authenticated user`,
          clientMax,
        );
        return null;
      }
      return { method, username: step.username, data: step.data };
    }
    const bytes = authPacket(ReasonCode.ContinueAuthentication, method, step.data, clientMax);
    if (bytes === null) {
      client.refuseConnect(
        ReasonCode.PacketTooLarge,
        "AUTH larger than the client allows",
        clientMax,
      );
      return null;
    }
    client.send(bytes);
    const next = await client.nextPacket(timeout);
    if (next === null) return null;
    if (next.type === "disconnect") {
      client.close("client sent DISCONNECT during authentication", false);
      return null;
    }
    if (next.type !== "auth") {
      return protocolError(
        client,
        `${next.type.toUpperCase()} during authentication`,
        "MQTT-3.1.2-30",
        clientMax,
      );
    }
    if (next.reasonCode !== ReasonCode.ContinueAuthentication) {
      const code = (next.reasonCode ?? 0).toString(16);
      return protocolError(client, `AUTH 0x${code} instead of 0x18`, "MQTT-4.12.0-3", clientMax);
    }
    if (next.properties?.authenticationMethod !== method) {
      return protocolError(
        client,
        "AUTH with another authentication method",
        "MQTT-4.12.0-5",
        clientMax,
      );
    }
    data = next.properties.authenticationData;
  }
}

/** Refuses the CONNECT with 0x82 for a packet the exchange does not allow. */
function protocolError(client: Client, why: string, statement: string, clientMax: number): null {
  client.refuseConnect(ReasonCode.ProtocolError, `${why} [${statement}]`, clientMax);
  return null;
}

/** An AUTH packet from a connected client: a re-authentication starts or continues (4.12.1). */
export function handleAuth(core: Core, client: Client, p: AuthPacket): void {
  const v5 = client.v5!;
  const method = v5.authMethod;
  if (method === undefined) {
    throw new ProtocolError(
      "AUTH from a client whose CONNECT had no authentication method",
      "MQTT-4.12.0-7",
      ReasonCode.ProtocolError,
    );
  }
  if (p.properties?.authenticationMethod !== method) {
    throw new ProtocolError(
      "AUTH without the authentication method of the CONNECT",
      "MQTT-4.12.1-1",
      ReasonCode.ProtocolError,
    );
  }
  const code = p.reasonCode ?? ReasonCode.Success;
  let r = v5.reauth;
  if (code === ReasonCode.ReAuthenticate) {
    if (r !== null) {
      throw new ProtocolError(
        "AUTH 0x19 while a re-authentication is in progress",
        "4.12.1",
        ReasonCode.ProtocolError,
      );
    }
    const exchange = core.enhancedAuthenticator!.start({
      ...client.info,
      method,
      reauthenticate: true,
    });
    r = v5.reauth = { exchange, busy: false };
  } else if (code !== ReasonCode.ContinueAuthentication || r === null || r.busy) {
    // 0x00 is the server's to send; 0x18 only answers our AUTH 0x18.
    throw new ProtocolError(
      `AUTH 0x${code.toString(16)} that answers no AUTH 0x18 of the server`,
      code === ReasonCode.Success ? "MQTT-3.15.2-1" : "MQTT-4.12.0-3",
      ReasonCode.ProtocolError,
    );
  }
  reauthStep(core, client, method, r, p.properties?.authenticationData);
}

/**
 * One step of a re-authentication. Other packets keep flowing meanwhile under the previous
 * authentication (4.12.1); a failure ends the connection with DISCONNECT (MQTT-4.12.1-2).
 */
function reauthStep(
  core: Core,
  client: Client,
  method: string,
  r: { exchange: AuthExchange; busy: boolean },
  data: Uint8Array | undefined,
): void {
  r.busy = true;
  const fail = (code: number, why: string) => {
    core.log.info(`client ${client.info.clientId}: re-authentication failed: ${why}`);
    // DISCONNECT has neither 0x86 nor 0x88 nor 0x8C: those become 0x87 / 0x89.
    const disconnectCode = code === ReasonCode.ServerUnavailable || code === ReasonCode.ServerBusy
      ? ReasonCode.ServerBusy
      : ReasonCode.NotAuthorized;
    client.close(`re-authentication failed: ${why}`, true, disconnectCode);
  };
  Promise.resolve(data).then((d) => r.exchange.step(d)).then((step) => {
    const v5 = client.v5;
    if (client.isClosed || v5 === null || v5.reauth !== r) return;
    r.busy = false;
    if (step.status === "failure") {
      v5.reauth = null;
      return fail(step.reasonCode, step.reason);
    }
    if (step.status === "success" && step.username !== client.info.username) {
      v5.reauth = null;
      return fail(ReasonCode.NotAuthorized, `authenticated as another user (${step.username})`);
    }
    const reasonCode = step.status === "success"
      ? ReasonCode.Success
      : ReasonCode.ContinueAuthentication;
    const bytes = authPacket(reasonCode, method, step.data, v5.maxPacketSize);
    if (bytes === null) {
      v5.reauth = null;
      return fail(ReasonCode.NotAuthorized, "AUTH larger than the client allows");
    }
    if (step.status === "success") {
      v5.reauth = null;
      core.log.info(`client ${client.info.clientId} re-authenticated (${method})`);
    }
    client.send(bytes);
  }).catch((err) => {
    if (client.isClosed) return;
    core.log.error(`re-authentication of ${client.info.clientId} failed: ${err?.stack ?? err}`);
    client.close("internal error during re-authentication", true, ReasonCode.UnspecifiedError);
  });
}
