/**
 * mqtt.js 5.0 connecting with SCRAM-SHA-256 enhanced authentication (AUTH 0x18 answered from its
 * handleAuth hook, the client side in scram_client.ts), over any URL mqtt.js takes (mqtt://,
 * mqtts://, ws://, wss://).
 */
import mqtt from "mqtt";
import type { IClientOptions, IConnackPacket, MqttClient } from "mqtt";
import { uid } from "./broker.ts";
import { METHOD, ScramClient } from "./scram_client.ts";

type AuthPacket = Parameters<MqttClient["handleAuth"]>[0];

/** A SCRAM-authenticated connection attempt; `connack` rejects if the broker refuses it. */
export interface ScramConnection {
  client: MqttClient;
  connack: Promise<IConnackPacket>;
  /** True when the CONNACK's server-final-message proves the server holds the verifier. */
  serverProven(connack: IConnackPacket): boolean;
}

export function scramConnect(
  url: string,
  user: string,
  password: string,
  opts: IClientOptions = {},
): ScramConnection {
  const scram = new ScramClient(user, password);
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clientId: uid("scram"),
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    manualConnect: true,
    ...opts,
    properties: { authenticationMethod: METHOD, authenticationData: scram.first() },
  });
  client.handleAuth = (packet: AuthPacket, cb) => {
    const data = packet.properties?.authenticationData;
    cb(undefined, {
      cmd: "auth",
      reasonCode: 0x18,
      properties: { authenticationMethod: METHOD, authenticationData: scram.final(data!) },
    });
  };
  const connack = new Promise<IConnackPacket>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
  client.connect();
  return {
    client,
    connack,
    serverProven: (c) => scram.verifyServer(c.properties?.authenticationData),
  };
}
