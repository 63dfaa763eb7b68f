import type { ClientInfo } from "../model.ts";

/** Lifecycle events (metrics, Kafka client events, cluster bookkeeping). */
export interface BrokerEvents {
  clientConnected?(client: ClientInfo): void;
  clientDisconnected?(client: ClientInfo, reason: string): void;
  subscribed?(client: ClientInfo, filter: string, qos: number): void;
  unsubscribed?(client: ClientInfo, filter: string): void;
}
