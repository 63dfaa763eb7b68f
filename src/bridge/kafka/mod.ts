/** Kafka bridge entry point: egress (MQTT -> Kafka) as a MessageSink, ingress (Kafka -> MQTT). */
import { Kafka, type LogEntry, logLevel } from "kafkajs";
import type { Broker } from "../../broker/broker.ts";
import type { BrokerEvents } from "../../broker/ports/events.ts";
import type { MessageSink } from "../../broker/ports/sink.ts";
import type { ClientInfo, StoredMessage } from "../../broker/model.ts";
import type { Config } from "../../config/load.ts";
import type { Logger } from "../../log.ts";
import { Egress } from "./egress.ts";
import type { EgressCounters } from "./egress_report.ts";
import { isPermanentSendError, ProducerWorker } from "./producer_link.ts";
import { inlineProducer } from "./producer_inline.ts";
import { Ingress, type IngressCounters } from "./ingress.ts";
import { silenceKafkajsTimerWarnings } from "./kafkajs_warnings.ts";
import {
  type BridgeRecord,
  eventRecord,
  messageRecord,
  messageRef,
  type RecordContext,
} from "./records.ts";
import { bridgeSettings, RuleSet } from "./settings.ts";

export type { BridgeSettings } from "./settings.ts";

/** What the bridge needs of the broker; the real Broker has it all. */
export type BridgeHost = Pick<Broker, "nodeId" | "publish" | "commitBarrier" | "isValidTopicName">;

export interface KafkaBridgeStats extends EgressCounters {
  /** Whether the producer currently has a connection to Kafka. */
  connected: boolean;
  /** Records waiting for Kafka (buffered or in flight) and their approximate bytes. */
  buffered: number;
  bufferedBytes: number;
  /** Ingress counters; null when no consumer topics are configured. */
  ingress: IngressCounters | null;
  /** Whether the ingress consumer currently holds its group membership. */
  ingressJoined: boolean;
}

export interface KafkaBridge {
  sink: MessageSink;
  events: BrokerEvents;
  /** Connects producer/consumer; ingress publishes into `broker`. Must not throw when Kafka is down. */
  start(broker: BridgeHost): Promise<void>;
  stop(): Promise<void>;
  /**
   * Stops only the ingress consumer. Meant to run before the broker closes its store, so that no
   * record is handed to a closing broker; stop() afterwards does the rest.
   */
  stopIngress(): Promise<void>;
  /** A snapshot of the counters (what was produced, buffered, dropped, refused, consumed). */
  stats(): KafkaBridgeStats;
}

/** Produce requests the egress keeps in flight (see EgressOptions.maxInFlight). */
const MAX_IN_FLIGHT = 2;

/** Returns null when the bridge is disabled in config. */
export function createKafkaBridge(config: Config, log: Logger): KafkaBridge | null {
  if (!config.kafkaEnabled) return null;
  silenceKafkajsTimerWarnings();
  const s = bridgeSettings(config);
  const rules = new RuleSet(s.rules);
  const ctx: RecordContext = {
    keyMode: s.keyMode,
    format: s.format,
    brokerId: s.brokerId,
    nodeId: "",
    processId: String(Deno.pid),
  };
  // The consumer's client; the producer has its own in producer_worker.ts.
  const kafka = new Kafka({
    clientId: `mqttwk-${s.brokerId}`,
    brokers: s.brokers,
    connectionTimeout: 3000,
    retry: { retries: s.retries, initialRetryTime: s.backoffMs, maxRetryTime: s.backoffMaxMs },
    // kafkajs repeats every connection error at ERROR; the bridge reports state changes itself.
    logLevel: log.enabled("debug") ? logLevel.INFO : logLevel.NOTHING,
    logCreator: () => (e: LogEntry) => log.debug(`kafkajs ${e.namespace}: ${e.log.message}`),
  });
  let worker: ProducerWorker | null = null;
  const egress = new Egress({
    maxMessages: s.bufferMessages,
    maxBytes: s.bufferBytes,
    lingerMs: s.lingerMs,
    batchBytes: s.batchBytes,
    maxRequestBytes: s.maxRequestBytes,
    backoffMs: s.backoffMs,
    backoffMaxMs: s.backoffMaxMs,
    // The next batch is on its way while Kafka works on one, so Kafka never idles for the time
    // between an answer and the next request (two thread hops with producer.thread).
    maxInFlight: MAX_IN_FLIGHT,
    createProducer: () => {
      const pc = {
        clientId: `mqttwk-${s.brokerId}`,
        brokers: s.brokers,
        acks: s.acks,
        idempotent: s.idempotent,
        retries: s.retries,
        backoffMs: s.backoffMs,
        backoffMaxMs: s.backoffMaxMs,
      };
      // On the broker's thread by default: the hop back from a producer thread waited for the
      // broker's turn and a core, a third of each request's round trip under a QoS 1 fan-in
      // (bench/results/issue15-kafka.md).
      if (!s.producerThread) return inlineProducer(pc);
      worker ??= new ProducerWorker(pc, log);
      return worker.producer();
    },
    isPermanent: isPermanentSendError,
    log,
    target: s.brokers.join(","),
  });
  const ingress = s.ingress
    ? new Ingress({
      settings: s.ingress,
      kafka,
      log,
      backoffMs: s.backoffMs,
      backoffMaxMs: s.backoffMaxMs,
    })
    : null;

  const sink: MessageSink = {
    accept(msg, from) {
      const rule = rules.match(msg.topic);
      if (rule === null || rule.kafkaTopic === null) return;
      // QoS 0 has no acknowledgement to hold back.
      const wait = rule.mode === "at-least-once" && msg.qos > 0;
      return egress.offer(record(msg, from, rule.kafkaTopic), wait);
    },
    // The same without a promise per message: the egress calls `done` itself.
    acceptThen(msg, from, done) {
      const rule = rules.match(msg.topic);
      if (rule === null || rule.kafkaTopic === null) return false;
      const wait = rule.mode === "at-least-once" && msg.qos > 0;
      egress.offerThen(record(msg, from, rule.kafkaTopic), wait ? done : undefined);
      return wait;
    },
  };

  /** Most messages are written into the produce batch only when it goes out (MessageRef). */
  function record(msg: StoredMessage, from: ClientInfo, kafkaTopic: string): BridgeRecord {
    return messageRef(msg, from.clientId, kafkaTopic, ctx) ??
      messageRecord(msg, from, kafkaTopic, ctx);
  }

  const eventsTopic = s.eventsTopic;
  const events: BrokerEvents = eventsTopic === null ? {} : {
    clientConnected: (c) =>
      void egress.offer(eventRecord(c, { event: "connected" }, eventsTopic, ctx), false),
    clientDisconnected: (c, reason) =>
      void egress.offer(eventRecord(c, { event: "disconnected", reason }, eventsTopic, ctx), false),
    subscribed: (c, filter, qos) =>
      void egress.offer(
        eventRecord(c, { event: "subscribed", filter, qos }, eventsTopic, ctx),
        false,
      ),
    unsubscribed: (c, filter) =>
      void egress.offer(eventRecord(c, { event: "unsubscribed", filter }, eventsTopic, ctx), false),
  };

  return {
    sink,
    events,
    start(broker) {
      ctx.nodeId = broker.nodeId;
      const ruleText = s.rules.map((r) =>
        `${r.filter} -> ${r.kafkaTopic ?? "-"}${r.kafkaTopic ? ` ${r.mode}` : ""}`
      ).join("; ");
      log.info(
        `kafka bridge to ${s.brokers.join(",")}: ${ruleText} (key ${s.keyMode}, format ` +
          `${s.format}${s.idempotent ? ", idempotent" : ""}${
            eventsTopic ? `, client events to ${eventsTopic}` : ""
          })` +
          (s.ingress
            ? `; ingress from ${s.ingress.topics.join(",")} (group ${s.ingress.groupId}) to ` +
              `${s.ingress.topicHeader ? `header ${s.ingress.topicHeader} or ` : ""}` +
              `${s.ingress.mqttTopic}`
            : ""),
      );
      egress.start();
      ingress?.start(broker);
      return Promise.resolve();
    },
    stopIngress: async () => {
      await ingress?.stop();
    },
    async stop() {
      // Ingress first: the broker is closing and must not be handed more messages.
      await ingress?.stop();
      await egress.stop();
      await worker?.close();
      const c = egress.counters;
      log.info(
        `kafka bridge stopped: ${c.produced} records produced, ${c.dropped} dropped, ` +
          `${c.rejected} refused (buffer full), ${c.failed} rejected by Kafka, ${c.abandoned} ` +
          `undelivered at stop` +
          (ingress ? `; ingress published ${ingress.counters.published}` : ""),
      );
    },
    stats: () => ({
      ...egress.counters,
      connected: egress.connected,
      buffered: egress.buffered,
      bufferedBytes: egress.bufferedBytes,
      ingress: ingress ? { ...ingress.counters } : null,
      ingressJoined: ingress?.joined ?? false,
    }),
  };
}
