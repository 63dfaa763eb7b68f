/**
 * What the traffic scenarios do differently for MQTT 5.0 clients: the CONNECT options (so that a
 * 5.0 run differs from its 3.1.1 twin only in the protocol) and the PUBLISH encoder.
 */

import type { Endpoint } from "./wire_transport.ts";
import { BROKER_LIMITS } from "./brokers.ts";
import type { BenchConn, OpenOptions } from "./client.ts";
import { Publish5Batcher } from "./mqtt5_wire.ts";
import { PublishBatcher } from "./mqtt_wire.ts";
import { type Scenario, SUBSCRIBER_TOPIC_ALIAS_MAXIMUM } from "./scenario_list.ts";

/** What a publisher loop needs from PublishBatcher / Publish5Batcher. */
export interface Batcher {
  readonly qos: number;
  fill(n: number, ts: number): Uint8Array;
}

/**
 * CONNECT options for a client of `s`. 5.0 mirrors the 3.1.1 session: clean session 1 is Clean
 * Start with no Session Expiry, clean session 0 is no Clean Start with an expiry that never ends
 * (3.1.2.11.2). Receive Maximum is the in-flight limit every broker gets for 3.1.1 clients
 * (BROKER_LIMITS.maxInflight): without it a 5.0 broker may use 65,535 (its default, 3.1.2.11.3)
 * and the two runs would not have the same window.
 */
export function openOptions(
  s: Scenario,
  clean: boolean,
  role: "pub" | "sub",
  endpoint?: Endpoint,
): OpenOptions {
  if (s.protocol !== 5) return { clean, endpoint };
  return {
    endpoint,
    version: 5,
    clean,
    sessionExpiry: clean ? 0 : 0xffffffff,
    receiveMaximum: BROKER_LIMITS.maxInflight,
    topicAliasMaximum: s.topicAlias && role === "sub" ? SUBSCRIBER_TOPIC_ALIAS_MAXIMUM : 0,
  };
}

/** The PUBLISH encoder of a publisher of `s` on `topic`, connected as `conn`. */
export function makeBatcher(
  s: Scenario,
  topic: string,
  conn: BenchConn,
  maxBatch: number,
): Batcher {
  if (s.protocol !== 5) return new PublishBatcher(topic, s.qos, s.payload, maxBatch);
  if (!s.topicAlias) return new Publish5Batcher(topic, s.qos, s.payload, maxBatch);
  // MQTT-3.3.2-9: a client may use aliases only up to the Topic Alias Maximum of the CONNACK.
  if (conn.brokerTopicAliasMaximum < 1) {
    throw new Error("the broker's CONNACK allows no topic aliases (Topic Alias Maximum 0)");
  }
  return new Publish5Batcher(topic, s.qos, s.payload, maxBatch, 1);
}

/** The first 5.0 failure any of `conns` saw (broker DISCONNECT, error reason code, bad alias). */
export function firstFailure(conns: BenchConn[]): string | null {
  for (const c of conns) if (c.failure !== null) return c.failure;
  return null;
}
