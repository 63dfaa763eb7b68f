/**
 * A 5.0 mqtt.js client for the matrix cases: keeps every PUBLISH it receives (with the topic an
 * alias resolved to), the acknowledgements it gets, its CONNACK, and, parsed straight off the
 * socket by mqtt-packet (mqtt.js's own parser, run separately), every PUBLISH as it arrives on the
 * wire, even while mqtt.js holds back an acknowledgement.
 */
import { Buffer } from "node:buffer";
import mqtt from "mqtt";
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient, Packet } from "mqtt";
import mqttPacket from "mqtt-packet";
import type { Deployment } from "./deployment.ts";
import { waitFor } from "../../helpers/wait.ts";

/** One received PUBLISH: the topic (alias resolved), its payload as text, the packet itself. */
export interface Msg {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

export interface Peer {
  client: MqttClient;
  connack: IConnackPacket;
  /** Messages mqtt.js handed to the application, in order. */
  messages: Msg[];
  /** PUBLISH packets as they arrived on the socket (before mqtt.js handled them). */
  wire: IPublishPacket[];
  /** PUBACK/PUBREC/SUBACK/UNSUBACK/DISCONNECT packets received. */
  acks: Packet[];
  /** Messages on `topic`. */
  on(topic: string): Msg[];
  /** Waits until `n` messages on `topic` arrived; returns them. */
  waitFor(topic: string, n?: number, timeout?: number): Promise<Msg[]>;
  /**
   * Resolves once the broker answered a request sent now: what it wrote to this client before
   * (retained messages after a SUBACK) has then arrived, so absences can be checked.
   */
  sync(): Promise<void>;
  /** Sends DISCONNECT (with `properties`) and closes. */
  close(properties?: { sessionExpiryInterval?: number }): Promise<void>;
  /** Drops the connection without DISCONNECT (the will is due). */
  drop(): void;
}

/** Connects a 5.0 mqtt.js client to `node` of `d`, without automatic reconnect. */
export async function peer(d: Deployment, node: 0 | 1, opts: IClientOptions = {}): Promise<Peer> {
  // Handlers go on before the CONNACK: a resumed session's messages follow it at once.
  const client = mqtt.connect(d.url(node), {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    keepalive: 30,
    ...d.clientOptions,
    ...opts,
  });
  const messages: Msg[] = [];
  const wire: IPublishPacket[] = [];
  const acks: Packet[] = [];
  client.on("error", () => {});
  client.on(
    "message",
    (topic, payload, packet) =>
      messages.push({ topic, payload: new TextDecoder().decode(payload), packet }),
  );
  client.on("packetreceive", (p) => {
    if (["puback", "pubrec", "suback", "unsuback", "disconnect"].includes(p.cmd)) acks.push(p);
  });
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  parser.on("packet", (p: Packet) => {
    if (p.cmd === "publish") wire.push(p as IPublishPacket);
  });
  parser.on("error", () => {});
  client.stream.on("data", (chunk: Buffer) => parser.parse(chunk));
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
    client.once("close", () => reject(new Error(`connection to ${d.url(node)} closed`)));
  });
  const on = (topic: string) => messages.filter((m) => m.topic === topic);
  return {
    client,
    connack,
    messages,
    wire,
    acks,
    on,
    waitFor: (topic, n = 1, timeout = 10_000) =>
      waitFor(() => on(topic).length >= n && on(topic), {
        what: `${n} message(s) on ${topic} (${d.name})`,
        timeout,
        detail: () => `got ${messages.map((m) => `${m.topic}=${m.payload}`).join(", ")}`,
      }),
    sync: async () => {
      await client.unsubscribeAsync(`m5sync/${crypto.randomUUID()}`);
    },
    close: async (properties) => {
      if (client.connected) {
        await client.endAsync(false, { properties, reasonCode: 0 });
      } else {
        await client.endAsync(true);
      }
    },
    drop: () => {
      client.stream.destroy();
      client.end(true);
    },
  };
}

/**
 * Waits until a subscription made on another cluster node routes messages to `sub`: publishes
 * QoS 0 probes on `topic` from `pub` until one arrives. On one broker the first probe arrives.
 */
export async function awaitRoute(pub: Peer, subs: Peer[], topic: string): Promise<void> {
  const seen = () => subs.some((s) => s.on(topic).length > 0);
  for (let i = 0; i < 100 && !seen(); i++) {
    await pub.client.publishAsync(topic, "probe", { qos: 0 });
    try {
      await waitFor(seen, { what: "probe", timeout: 150 });
    } catch { /* not routed yet */ }
  }
  if (!seen()) throw new Error(`the route for ${topic} never reached the publisher's node`);
}
