/** Kafka bridge entry point: egress (MQTT -> Kafka) as a MessageSink, ingress (Kafka -> MQTT). */
import type { Broker } from "../../broker/broker.ts";
import type { BrokerEvents, MessageSink } from "../../broker/hooks.ts";
import type { Config } from "../../config/load.ts";
import type { Logger } from "../../log.ts";

export interface KafkaBridge {
  sink: MessageSink;
  events: BrokerEvents;
  /** Connects producer/consumer; ingress publishes into `broker`. Must not throw when Kafka is down. */
  start(broker: Broker): Promise<void>;
  stop(): Promise<void>;
}

/** Returns null when the bridge is disabled in config. */
export function createKafkaBridge(config: Config, _log: Logger): KafkaBridge | null {
  if (!config.kafkaEnabled) return null;
  throw new Error("mqttwk.broker.kafka.broker-enabled: the Kafka bridge is not available yet");
}
