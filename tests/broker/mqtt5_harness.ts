/**
 * Helpers for the MQTT 5.0 core tests: 5.0 CONNECTs and SUBSCRIBEs, raw 5.0 bytes, and the
 * server's DISCONNECT.
 */
import assert from "node:assert/strict";
import type { Broker } from "../../src/broker/broker.ts";
import type {
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Properties,
  QoS,
  Subscription,
} from "../../src/codec/packets.ts";
import { MemoryClient, type MemoryClientOptions } from "./memory_pipe.ts";

export function connect5(clientId: string, over: Partial<ConnectPacket> = {}): ConnectPacket {
  return {
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 5,
    clean: true,
    keepalive: 0,
    clientId,
    ...over,
  };
}

/** A 5.0 client connected with `properties` (CONNACK 0 asserted); returns it and its CONNACK. */
export async function connected5(
  b: Broker,
  clientId: string,
  properties?: Properties,
  over: Partial<ConnectPacket> & MemoryClientOptions = {},
): Promise<{ c: MemoryClient; ack: ConnackPacket }> {
  const c = new MemoryClient(b, 5, over);
  await c.send(connect5(clientId, { properties, ...over }));
  const ack = await c.next("connack");
  assert.equal(ack.reasonCode, 0, `CONNACK for ${clientId}: ${JSON.stringify(ack.properties)}`);
  return { c, ack };
}

/** Waits for the server's DISCONNECT, asserts its reason code, then for the close. */
export async function expectDisconnect(c: MemoryClient, code: number): Promise<DisconnectPacket> {
  const d = await c.next("disconnect");
  assert.equal(
    d.reasonCode ?? 0,
    code,
    `DISCONNECT 0x${code.toString(16)} expected, got 0x${(d.reasonCode ?? 0).toString(16)} ` +
      `(${d.properties?.reasonString})`,
  );
  await c.waitClosed();
  return d;
}

/** Bytes from a hex string with spaces. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** A 5.0 SUBSCRIBE with options and an optional identifier; returns the SUBACK codes. */
export async function subscribe5(
  c: MemoryClient,
  subs: (Partial<Subscription> & { topic: string; qos: QoS })[],
  id?: number,
  packetId = 1,
): Promise<number[]> {
  await c.send({
    type: "subscribe",
    packetId,
    subscriptions: subs,
    properties: id === undefined ? undefined : { subscriptionIdentifiers: [id] },
  });
  return (await c.next("suback")).reasonCodes;
}
