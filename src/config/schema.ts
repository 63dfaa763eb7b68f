/**
 * The single table of configuration keys. Defaults, environment-variable names, command-line
 * flags, validation, `--help` output and the `Config` type are all derived from `SCHEMA`, so a new
 * feature adds a key by adding one row here (and a line to config/application.yaml).
 *
 * Keys mirror the original Java MqttWk's application.yaml so that a migrating user's file loads
 * unchanged. Rows marked `ignored` are original keys we have no use for: they are accepted (any
 * value) and reported as warnings rather than rejected as unknown.
 */

export type ValueType =
  /** Any scalar; numbers in YAML keep their source spelling (e.g. a password `0123`). */
  | "string"
  /** Safe integer; fractions and non-numbers are rejected. */
  | "int"
  /** true/false, plus yes/no/on/off (the original's SnakeYAML read those as booleans too). */
  | "bool"
  /** Integer 0..65535; 0 asks the OS for a free port, which tests rely on. */
  | "port"
  /** One of `values`, matched case-insensitively and normalised to the spelling in `values`. */
  | "enum"
  /** YAML sequence or comma-separated string; becomes string[]. */
  | "list"
  /** Byte count; a plain integer or e.g. "64KiB", "1MB", "2g" (every multiple is 1024, as in Spring). */
  | "bytes"
  /** Seconds (may be fractional); a plain number or e.g. "500ms", "30s", "5m", "2h", "1d". */
  | "duration";

export interface Row {
  /** Full dotted key as it appears nested in YAML. */
  readonly key: string;
  readonly type: ValueType;
  readonly default: string | number | boolean | readonly string[];
  /** Allowed values for `enum`. */
  readonly values?: readonly string[];
  /** Inclusive bounds for int/bytes/duration (duration bounds are in seconds). */
  readonly min?: number;
  readonly max?: number;
  /** Property name on `Config`; absent for ignored keys. */
  readonly field?: string;
  readonly doc: string;
  /** Accepted for compatibility with the original broker, but has no effect. */
  readonly ignored?: true;
  /** Extra short command-line flag, without the leading `--`. */
  readonly alias?: string;
  /** An empty string means "use the default" (the original used an empty host for all interfaces). */
  readonly emptyIsDefault?: true;
  /** Words accepted in place of a value, e.g. Kafka's `acks: all`. */
  readonly synonyms?: Readonly<Record<string, string | number | boolean>>;
  /** Must not be echoed back in logs or error messages. */
  readonly secret?: true;
}

const B = "mqttwk.broker";
const K = "mqttwk.broker.kafka";

export const SCHEMA = [
  // --- Original MqttWk broker keys -------------------------------------------------------------
  {
    key: `${B}.id`,
    type: "string",
    default: "mqttwk",
    field: "brokerId",
    alias: "broker-id",
    doc: "Broker id; also used as the client id of the broker's own internal connections.",
  },
  {
    key: `${B}.host`,
    type: "string",
    default: "0.0.0.0",
    field: "host",
    alias: "host",
    emptyIsDefault: true,
    doc: "Address to listen on; empty means all interfaces (0.0.0.0).",
  },
  {
    key: `${B}.port`,
    type: "port",
    default: 8885,
    field: "port",
    alias: "port",
    doc: "Plain MQTT over TCP port; 0 picks a free port.",
  },
  {
    key: `${B}.websocket-port`,
    type: "port",
    default: 9995,
    field: "websocketPort",
    alias: "ws-port",
    doc: "MQTT over WebSocket port; 0 picks a free port.",
  },
  {
    key: `${B}.websocket-enabled`,
    type: "bool",
    default: true,
    field: "websocketEnabled",
    doc: "Whether to serve MQTT over WebSocket.",
  },
  {
    key: `${B}.websocket-path`,
    type: "string",
    default: "/mqtt",
    field: "websocketPath",
    doc: "HTTP path on which WebSocket upgrades are accepted.",
  },
  {
    key: `${B}.ssl-enabled`,
    type: "bool",
    default: false,
    field: "sslEnabled",
    doc:
      "Turn on the TLS (ssl-port) and WSS (wss-port) listeners (certificate from ssl-cert-file).",
  },
  {
    key: `${B}.ssl-password`,
    type: "string",
    default: "",
    field: "sslPassword",
    secret: true,
    doc: "Password of the TLS private key, if it is encrypted.",
  },
  {
    key: `${B}.mqtt-password-must`,
    type: "bool",
    default: false,
    field: "passwordMust",
    doc: "Reject CONNECTs without valid username/password (the original defaulted to true).",
  },
  {
    key: `${B}.keep-alive`,
    type: "int",
    default: 60,
    min: 0,
    max: 65535,
    field: "keepAlive",
    doc: "The original broker's keep-alive in seconds; kept for compatibility (see max-keepalive).",
  },
  {
    key: `${B}.cluster-on`,
    type: "bool",
    default: false,
    field: "clusterOn",
    doc: "Share sessions, subscriptions and messages with other nodes through Redis.",
  },
  {
    key: `${B}.bossGroup-nThreads`,
    type: "int",
    default: 4,
    ignored: true,
    doc: "Netty acceptor threads; no equivalent in Deno.",
  },
  {
    key: `${B}.workerGroup-nThreads`,
    type: "int",
    default: 200,
    ignored: true,
    doc: "Netty worker threads; no equivalent in Deno.",
  },
  {
    key: `${B}.use-epoll`,
    type: "bool",
    default: false,
    ignored: true,
    doc: "Netty epoll transport; Deno picks its own.",
  },
  {
    key: `${B}.so-backlog`,
    type: "int",
    default: 511,
    ignored: true,
    doc: "TCP accept backlog; not settable from Deno.",
  },
  {
    key: `${B}.so-keep-alive`,
    type: "bool",
    default: true,
    ignored: true,
    doc: "TCP SO_KEEPALIVE; MQTT keep-alive is used instead.",
  },

  // --- Additions of this implementation --------------------------------------------------------
  {
    key: `${B}.log-level`,
    type: "enum",
    values: ["debug", "info", "warn", "error"],
    default: "info",
    field: "logLevel",
    alias: "log-level",
    doc: "Least severe log level printed.",
  },
  {
    key: `${B}.connect-timeout`,
    type: "duration",
    default: 10,
    min: 0.01,
    field: "connectTimeout",
    doc: "Seconds a new connection may take to send CONNECT before it is closed.",
  },
  {
    key: `${B}.max-connections`,
    type: "int",
    default: 19000,
    min: 1,
    field: "maxConnections",
    doc: "Maximum simultaneous client connections (capped below the open-file limit).",
  },
  {
    key: `${B}.max-connections-per-ip`,
    type: "int",
    default: 1000,
    min: 0,
    field: "maxConnectionsPerIp",
    doc: "Maximum simultaneous connections from one IP address (loopback exempt unless " +
      "auth.limit-loopback); 0 = unlimited.",
  },
  {
    key: `${B}.max-packet-size`,
    type: "bytes",
    default: 1048576,
    min: 16,
    max: 268435460,
    field: "maxPacketSize",
    doc: 'Largest MQTT packet accepted, in bytes (e.g. 1048576 or "1MiB").',
  },
  {
    key: `${B}.max-topic-levels`,
    type: "int",
    default: 128,
    min: 1,
    field: "maxTopicLevels",
    doc: "Maximum number of '/'-separated levels in a topic name or filter.",
  },
  {
    key: `${B}.max-topic-length`,
    type: "int",
    default: 65535,
    min: 1,
    max: 65535,
    field: "maxTopicLength",
    doc: "Maximum length of a topic name or filter, in UTF-8 bytes.",
  },
  {
    key: `${B}.max-subscriptions-per-client`,
    type: "int",
    default: 10000,
    min: 0,
    field: "maxSubscriptionsPerClient",
    doc: "Maximum subscriptions one client may hold (a bound on what an anonymous client can " +
      "make the broker keep); 0 = unlimited.",
  },
  {
    key: `${B}.max-inflight`,
    type: "int",
    default: 32,
    min: 1,
    max: 65535,
    field: "maxInflight",
    doc: "Maximum unacknowledged QoS 1/2 messages in flight to one client.",
  },
  {
    key: `${B}.max-queued-messages`,
    type: "int",
    default: 1000,
    min: 0,
    field: "maxQueuedMessages",
    doc: "Maximum messages queued per client beyond the in-flight window; 0 = queue none.",
  },
  {
    key: `${B}.max-queued-bytes`,
    type: "bytes",
    default: 0,
    min: 0,
    field: "maxQueuedBytes",
    doc: "Maximum payload bytes queued per client; 0 = unlimited.",
  },
  {
    key: `${B}.max-queued-bytes-total`,
    type: "bytes",
    default: 134217728,
    min: 0,
    field: "maxQueuedBytesTotal",
    doc: "Maximum bytes queued across all clients (payload + topic + properties + 512 per " +
      "message); 0 = unlimited.",
  },
  {
    key: `${B}.max-sessions`,
    type: "int",
    default: 100000,
    min: 0,
    field: "maxSessions",
    doc: "Maximum persistent sessions (online or offline) on this node; 0 = unlimited.",
  },
  {
    key: `${B}.max-sessions-per-user`,
    type: "int",
    default: 10000,
    min: 0,
    field: "maxSessionsPerUser",
    doc: "Maximum persistent sessions of one authenticated user; 0 = unlimited.",
  },
  {
    key: `${B}.max-sessions-per-address`,
    type: "int",
    default: 1000,
    min: 0,
    field: "maxSessionsPerAddress",
    doc: "Maximum persistent sessions of unauthenticated clients from one IP; 0 = unlimited.",
  },
  {
    key: `${B}.queue-full-policy`,
    type: "enum",
    values: ["drop-new", "drop-oldest"],
    default: "drop-new",
    field: "queueFullPolicy",
    doc: "Which message is dropped when a client's queue is full.",
  },
  {
    key: `${B}.outbound-buffer-bytes`,
    type: "bytes",
    default: 1048576,
    min: 1,
    field: "outboundBufferBytes",
    doc: "Unsent bytes buffered per connection before it counts as a slow consumer.",
  },
  {
    key: `${B}.slow-consumer-timeout`,
    type: "duration",
    default: 30,
    min: 0,
    field: "slowConsumerTimeout",
    doc: "Seconds a connection may stay over outbound-buffer-bytes before it is closed.",
  },
  {
    key: `${B}.retry-interval`,
    type: "duration",
    default: 0,
    min: 0,
    field: "retryInterval",
    doc: "Seconds before an unacknowledged QoS 1/2 message is resent; 0 = only on reconnect.",
  },
  {
    key: `${B}.session-expiry-interval`,
    type: "duration",
    default: 7200,
    min: 0,
    field: "sessionExpiryInterval",
    doc:
      "Seconds a 3.1.1 persistent session survives disconnect, and the most a 5.0 client gets; 0 = never.",
  },
  {
    key: `${B}.max-publish-rate`,
    type: "int",
    default: 0,
    min: 0,
    field: "maxPublishRate",
    doc:
      "PUBLISH packets per second one connection may send (token bucket); more: MQTT 5 DISCONNECT 0x96, 3.1.1 closed; 0 = no limit.",
  },
  {
    key: `${B}.max-publish-burst`,
    type: "int",
    default: 0,
    min: 0,
    field: "maxPublishBurst",
    doc:
      "PUBLISH packets a connection may send at once above max-publish-rate (the bucket's size); 0 = one second's worth.",
  },
  {
    key: `${B}.max-keepalive`,
    type: "int",
    default: 0,
    min: 0,
    max: 65535,
    field: "maxKeepalive",
    doc:
      "MQTT 5: longest keepalive in seconds; a client asking for more or 0 gets this; 0 = no cap.",
  },
  {
    key: `${B}.receive-maximum`,
    type: "int",
    default: 65535,
    min: 1,
    max: 65535,
    field: "receiveMaximum",
    doc: "MQTT 5: QoS 1/2 PUBLISHes a client may have unacknowledged towards the broker.",
  },
  {
    key: `${B}.topic-alias-maximum`,
    type: "int",
    default: 10,
    min: 0,
    max: 65535,
    field: "topicAliasMaximum",
    doc: "MQTT 5: topic aliases a client may set towards the broker; 0 = none.",
  },
  {
    key: `${B}.max-qos`,
    type: "int",
    default: 2,
    min: 0,
    max: 2,
    field: "maxQos",
    doc: "Highest QoS accepted in PUBLISH and wills and granted to subscriptions.",
  },
  {
    key: `${B}.retain-available`,
    type: "bool",
    default: true,
    field: "retainAvailable",
    doc: "Whether retained messages are supported; off: a retained PUBLISH disconnects.",
  },
  {
    key: `${B}.max-retained-messages`,
    type: "int",
    default: 200000,
    min: 0,
    field: "maxRetainedMessages",
    doc: "Maximum retained messages stored (the broker's $SYS values aside); beyond it a " +
      "retained PUBLISH to a new topic is delivered but not stored (5.0 QoS 1/2: refused, " +
      "0x97); 0 = unlimited.",
  },
  {
    key: `${B}.max-retained-bytes`,
    type: "bytes",
    default: 134217728,
    min: 0,
    field: "maxRetainedBytes",
    doc: "Maximum bytes of retained messages (payload + topic + 256 per message), applied as " +
      "max-retained-messages is; 0 = unlimited.",
  },
  {
    key: `${B}.shared-subscription-available`,
    type: "bool",
    default: true,
    field: "sharedSubscriptionAvailable",
    doc: "Shared subscriptions ($share/{group}/{filter}, $queue/{filter}) for 3.1.1 and 5.0.",
  },
  {
    key: `${B}.shared-subscription-strategy`,
    type: "enum",
    values: ["round_robin", "random", "sticky", "least_inflight"],
    default: "round_robin",
    field: "sharedSubscriptionStrategy",
    doc: "How a shared group picks the one member (or node) that receives each message.",
  },
  {
    key: `${B}.wildcard-subscription-available`,
    type: "bool",
    default: true,
    field: "wildcardSubscriptionAvailable",
    doc: "Whether filters with + or # may be subscribed to (MQTT 5 SUBACK 0xA2 when off).",
  },
  {
    key: `${B}.response-information`,
    type: "string",
    default: "",
    field: "responseInformation",
    doc: "MQTT 5: Response Information for clients that request it; empty = not sent.",
  },
  {
    key: `${B}.persistence`,
    type: "enum",
    values: ["sqlite", "memory"],
    default: "sqlite",
    field: "persistence",
    alias: "persistence",
    doc: "Where sessions, subscriptions and retained messages are kept.",
  },
  {
    key: `${B}.data-dir`,
    type: "string",
    default: "./data",
    field: "dataDir",
    alias: "data-dir",
    doc: "Directory for the sqlite database (relative to the working directory).",
  },
  {
    key: `${B}.durability`,
    type: "enum",
    values: ["sync", "interval"],
    default: "sync",
    field: "durability",
    doc: "sync = commit before acknowledging; interval = group commits every commit-interval-ms.",
  },
  {
    key: `${B}.commit-interval-ms`,
    type: "int",
    default: 5,
    min: 1,
    max: 60000,
    field: "commitIntervalMs",
    doc: "Milliseconds between group commits when durability is interval.",
  },
  {
    key: `${B}.store-integrity-check`,
    type: "enum",
    values: ["quick", "full", "off"],
    default: "quick",
    field: "storeIntegrityCheck",
    doc:
      "Check the sqlite store at start-up (PRAGMA quick_check / integrity_check); damage refuses the start.",
  },
  {
    key: `${B}.disk-free-warn-bytes`,
    type: "bytes",
    default: 268435456,
    min: 0,
    field: "diskFreeWarnBytes",
    doc:
      "Warn (log, /health degraded) when the data directory's file system has less free space; 0 = off.",
  },
  {
    key: `${B}.node-id`,
    type: "string",
    default: "",
    field: "nodeId",
    alias: "node-id",
    doc: "Cluster node id; empty = generated at start-up.",
  },

  // --- Authentication and authorization --------------------------------------------------------
  {
    key: `${B}.auth.providers`,
    type: "list",
    default: [],
    field: "authProviders",
    doc: "Authentication providers asked in order, first allow wins: rsa, password-file, http; " +
      "empty = each one configured below, in that order. Used when mqtt-password-must is true.",
  },
  {
    key: `${B}.auth.rsa-public-key`,
    type: "string",
    default: "",
    field: "authRsaPublicKey",
    doc: "PEM public key for the original MqttWk's RSA passwords; empty = off. " +
      "keystore/demo-auth-public.pem is the original's demo key (its private half is public).",
  },
  {
    key: `${B}.auth.password-file`,
    type: "string",
    default: "",
    field: "authPasswordFile",
    doc: "mosquitto_passwd-style file of user:$7$... hashes (deno task passwd); empty = off.",
  },
  {
    key: `${B}.auth.scram-file`,
    type: "string",
    default: "",
    field: "authScramFile",
    doc: "SCRAM-SHA-256 verifiers (user:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:" +
      "<ServerKey>, deno task scram-user) for MQTT 5.0 enhanced authentication; empty = off.",
  },
  {
    key: `${B}.auth.http-url`,
    type: "string",
    default: "",
    field: "authHttpUrl",
    secret: true,
    doc: "URL that is POSTed the credentials as JSON and answers allow or deny; empty = off.",
  },
  {
    key: `${B}.auth.http-timeout`,
    type: "duration",
    default: 5,
    min: 0.01,
    field: "authHttpTimeout",
    doc: "Seconds to wait for the HTTP hook; no answer in time counts as a failure (not let in).",
  },
  {
    key: `${B}.auth.http-cache-ttl`,
    type: "duration",
    default: 10,
    min: 0,
    field: "authHttpCacheTtl",
    doc: "Seconds an HTTP hook answer (allow or deny) is reused for the same credentials; 0 = off.",
  },
  {
    key: `${B}.auth.acl-file`,
    type: "string",
    default: "",
    field: "authAclFile",
    doc: "mosquitto acl_file-style topic rules (user, topic, pattern); empty = everything allowed.",
  },
  {
    key: `${B}.auth.max-connection-rate`,
    type: "int",
    default: 10,
    min: 0,
    field: "authMaxConnectionRate",
    doc: "New connections per second allowed from one IP address (token bucket; loopback " +
      "exempt unless auth.limit-loopback); 0 = unlimited.",
  },
  {
    key: `${B}.auth.connection-burst`,
    type: "int",
    default: 30,
    min: 1,
    field: "authConnectionBurst",
    doc: "Connections one IP address may open at once before max-connection-rate applies.",
  },
  {
    key: `${B}.auth.failure-delay-max`,
    type: "duration",
    default: 5,
    min: 0,
    field: "authFailureDelayMax",
    doc: "Longest delay before answering an address with recent failed logins; 0 = no delay.",
  },
  {
    key: `${B}.auth.max-pending-per-ip`,
    type: "int",
    default: 16,
    min: 1,
    field: "authMaxPendingPerIp",
    doc: "Authentication attempts one IP address may have waiting at once (they are checked one " +
      "at a time); beyond it CONNACK 0x03 at once. Loopback exempt unless auth.limit-loopback.",
  },
  {
    key: `${B}.auth.limit-loopback`,
    type: "bool",
    default: false,
    field: "authLimitLoopback",
    doc: "Apply max-connection-rate, max-pending-per-ip and max-connections-per-ip to " +
      "127.0.0.0/8 and ::1 too.",
  },

  // --- Kafka bridge (original keys) ------------------------------------------------------------
  {
    key: `${K}.broker-enabled`,
    type: "bool",
    default: false,
    field: "kafkaEnabled",
    doc: "Forward published messages to Kafka.",
  },
  {
    key: `${K}.bootstrap.servers`,
    type: "string",
    default: "127.0.0.1:9092",
    field: "kafkaBootstrapServers",
    doc: 'Kafka bootstrap servers, "host:port,host:port".',
  },
  {
    key: `${K}.acks`,
    type: "int",
    default: -1,
    min: -1,
    max: 1,
    synonyms: { all: -1 },
    field: "kafkaAcks",
    doc: "Producer acks: 0, 1, or -1 (= all).",
  },
  {
    key: `${K}.retries`,
    type: "int",
    default: 3,
    min: 0,
    field: "kafkaRetries",
    doc: "Producer retries.",
  },
  {
    key: `${K}.batch.size`,
    type: "bytes",
    default: 16384,
    min: 0,
    field: "kafkaBatchSize",
    doc: "Producer batch size in bytes.",
  },
  {
    key: `${K}.linger.ms`,
    type: "int",
    default: 1,
    min: 0,
    field: "kafkaLingerMs",
    doc: "Producer linger in milliseconds.",
  },
  {
    key: `${K}.buffer.memory`,
    type: "bytes",
    default: 33554432,
    min: 0,
    field: "kafkaBufferMemory",
    doc: "Producer buffer memory in bytes.",
  },
  {
    key: `${K}.producer.topic`,
    type: "string",
    default: "mqtt_publish",
    field: "kafkaProducerTopic",
    doc: "Kafka topic that receives the forwarded messages.",
  },
  {
    key: `${K}.key.serializer`,
    type: "string",
    default: "org.apache.kafka.common.serialization.StringSerializer",
    ignored: true,
    doc: "Java serializer class; keys are always sent as strings.",
  },
  {
    key: `${K}.value.serializer`,
    type: "string",
    default: "org.apache.kafka.common.serialization.StringSerializer",
    ignored: true,
    doc: "Java serializer class; values are always sent as JSON strings.",
  },
  {
    key: `${K}.partitioner.class`,
    type: "string",
    default: "",
    ignored: true,
    doc: "Java partitioner class; the default partitioner is used.",
  },

  // --- Kafka bridge (additions) ----------------------------------------------------------------
  {
    key: `${K}.rules`,
    type: "list",
    default: [],
    field: "kafkaRules",
    doc: 'Egress rules "<mqtt filter> -> <kafka topic> [at-least-once|fire-and-forget]" or ' +
      '"<mqtt filter> -> -" (not forwarded); first match wins; empty = "# -> <producer.topic>".',
  },
  {
    key: `${K}.delivery`,
    type: "enum",
    values: ["at-least-once", "fire-and-forget"],
    default: "at-least-once",
    field: "kafkaDelivery",
    doc: "Mode of rules without one: at-least-once holds QoS 1/2 acks until Kafka has the record.",
  },
  {
    key: `${K}.record.key`,
    type: "enum",
    values: ["topic", "client-id", "none"],
    default: "topic",
    field: "kafkaRecordKey",
    doc:
      "Kafka record key (and so the partition): the MQTT topic, the publisher's client id, or none.",
  },
  {
    key: `${K}.record.format`,
    type: "enum",
    values: ["raw", "mqttwk-json"],
    default: "raw",
    field: "kafkaRecordFormat",
    doc:
      "Record value: the raw payload, or the original MqttWk's JSON; headers carry MQTT metadata.",
  },
  {
    key: `${K}.enable.idempotence`,
    type: "bool",
    default: true,
    field: "kafkaEnableIdempotence",
    doc: "Idempotent producer (no duplicates from producer retries); needs acks -1.",
  },
  {
    key: `${K}.producer.thread`,
    type: "bool",
    default: false,
    field: "kafkaProducerThread",
    doc: "Run the egress producer on a thread of its own; by default it runs on the broker's " +
      "thread, where Kafka's answers release the acknowledgements without a thread hop.",
  },
  {
    key: `${K}.max.request.size`,
    type: "bytes",
    default: 1048576,
    min: 1024,
    field: "kafkaMaxRequestSize",
    doc: "Largest produce request (one batch of records) in bytes.",
  },
  {
    key: `${K}.buffer.max-messages`,
    type: "int",
    default: 100000,
    min: 1,
    field: "kafkaBufferMaxMessages",
    doc: "Records held while Kafka is slow or down (buffer.memory bounds their bytes).",
  },
  {
    key: `${K}.reconnect.backoff.ms`,
    type: "int",
    default: 100,
    min: 1,
    field: "kafkaReconnectBackoffMs",
    doc: "First delay in milliseconds before reconnecting to Kafka; doubles per failure.",
  },
  {
    key: `${K}.reconnect.backoff.max.ms`,
    type: "int",
    default: 10000,
    min: 1,
    field: "kafkaReconnectBackoffMaxMs",
    doc: "Longest delay in milliseconds between Kafka reconnection attempts.",
  },
  {
    key: `${K}.events.topic`,
    type: "string",
    default: "",
    field: "kafkaEventsTopic",
    doc: "Kafka topic for client events (connected, disconnected, subscribed, ...); empty = none.",
  },
  {
    key: `${K}.consumer.topics`,
    type: "list",
    default: [],
    field: "kafkaConsumerTopics",
    doc: "Kafka topics whose records are published into MQTT; empty = no ingress.",
  },
  {
    key: `${K}.consumer.group.id`,
    type: "string",
    default: "mqttwk-ingress",
    field: "kafkaConsumerGroupId",
    doc: "Consumer group of the ingress; nodes sharing it split the records between them.",
  },
  {
    key: `${K}.consumer.auto.offset.reset`,
    type: "enum",
    values: ["latest", "earliest"],
    default: "latest",
    field: "kafkaConsumerAutoOffsetReset",
    doc: "Where a group without committed offsets starts: latest or earliest.",
  },
  {
    key: `${K}.consumer.mqtt-topic`,
    type: "string",
    default: "kafka/{topic}/{key}",
    field: "kafkaConsumerMqttTopic",
    doc: "MQTT topic of ingress messages; {topic}, {key} and {partition} are replaced.",
  },
  {
    key: `${K}.consumer.topic-header`,
    type: "string",
    default: "",
    field: "kafkaConsumerTopicHeader",
    doc: "Record header that, when present, gives the MQTT topic instead of mqtt-topic.",
  },
  {
    key: `${K}.consumer.qos`,
    type: "int",
    default: 1,
    min: 0,
    max: 2,
    field: "kafkaConsumerQos",
    doc: "QoS of ingress messages.",
  },
  {
    key: `${K}.consumer.retain`,
    type: "bool",
    default: false,
    field: "kafkaConsumerRetain",
    doc: "Whether ingress messages are retained.",
  },

  // --- Redis (original keys) -------------------------------------------------------------------
  {
    key: "redis.mode",
    type: "enum",
    values: ["normal", "cluster"],
    default: "normal",
    field: "redisMode",
    doc: "normal = one Redis server at host:port; cluster = Redis Cluster at nodes.",
  },
  {
    key: "redis.host",
    type: "string",
    default: "127.0.0.1",
    field: "redisHost",
    doc: "Redis host (normal mode).",
  },
  {
    key: "redis.port",
    type: "port",
    default: 6379,
    min: 1,
    field: "redisPort",
    doc: "Redis port (normal mode).",
  },
  {
    key: "redis.password",
    type: "string",
    default: "",
    field: "redisPassword",
    secret: true,
    doc: "Redis password; empty = none.",
  },
  {
    key: "redis.database",
    type: "int",
    default: 0,
    min: 0,
    field: "redisDatabase",
    doc: "Redis database number (normal mode).",
  },
  {
    key: "redis.nodes",
    type: "string",
    default: "",
    field: "redisNodes",
    doc: 'Redis Cluster nodes, "host:port,host:port" (cluster mode).',
  },
  {
    key: "redis.timeout",
    type: "int",
    default: 2000,
    ignored: true,
    doc: "Jedis socket timeout in milliseconds.",
  },
  {
    key: "redis.max_redir",
    type: "int",
    default: 10,
    ignored: true,
    doc: "Jedis cluster maximum redirections.",
  },
  {
    key: "redis.maxTotal",
    type: "int",
    default: 100,
    ignored: true,
    doc: "Jedis pool size.",
  },
  {
    key: "redis.pool.maxTotal",
    type: "int",
    default: 200,
    ignored: true,
    doc: "Jedis pool size.",
  },
  {
    key: "redis.pool.maxIdle",
    type: "int",
    default: 50,
    ignored: true,
    doc: "Jedis pool idle connections.",
  },
  {
    key: "redis.pool.minIdle",
    type: "int",
    default: 10,
    ignored: true,
    doc: "Jedis pool idle connections.",
  },

  // --- Cluster over Redis (additions) ----------------------------------------------------------
  {
    key: "redis.key-prefix",
    type: "string",
    default: "mqttwk:",
    field: "redisKeyPrefix",
    doc: 'Prefix of every Redis key and channel of this broker cluster (no "{" or "}").',
  },
  {
    key: "redis.require-persistence",
    type: "bool",
    default: false,
    field: "redisRequirePersistence",
    doc:
      "Refuse to start when Redis keeps no AOF (appendonly yes) and so may lose acknowledged messages on a restart; false = warn only.",
  },
  {
    key: `${B}.cluster.node-timeout`,
    type: "duration",
    default: 5,
    min: 0.5,
    max: 3600,
    field: "clusterNodeTimeout",
    doc: "Seconds without a heartbeat after which a node counts as dead and is taken over.",
  },
  {
    key: `${B}.cluster.stream-max-len`,
    type: "int",
    default: 100000,
    min: 1000,
    field: "clusterStreamMaxLen",
    doc: "Approximate cap on the entries of one node's stream in Redis (the QoS 1/2 messages " +
      "forwarded to it; one entry holds one batch: a message, or up to 1,024 totalling ~60 KiB).",
  },

  // --- HTTP / framework (original keys) --------------------------------------------------------
  {
    key: "server.port",
    type: "port",
    default: 8922,
    field: "httpPort",
    doc: "HTTP port (API, dashboard, /metrics, /health); 0 picks a free port.",
  },
  {
    key: `${B}.sys-interval`,
    type: "int",
    default: 10,
    min: 0,
    max: 86400,
    field: "sysInterval",
    doc:
      "Seconds between $SYS topic updates (Mosquitto's names, retained; cluster totals under $SYS/broker, per node under $SYS/nodes/<id>); 0 = off.",
  },
  {
    key: `${B}.http-enabled`,
    type: "bool",
    default: false,
    field: "httpEnabled",
    doc: "Serve the HTTP port: /metrics, /health, the admin API, the original API, the dashboard.",
  },
  {
    key: `${B}.http-host`,
    type: "string",
    default: "127.0.0.1",
    field: "httpHost",
    doc: "Address of the HTTP port (API, dashboard, /metrics, /health); loopback unless you " +
      "expose it, and then only with authentication configured (mqttwk.http.*).",
  },
  {
    key: "mqttwk.http.admin-users",
    type: "list",
    default: [],
    field: "httpAdminUsers",
    doc: "Users of auth.password-file who may use the HTTP API with the admin role (everything).",
  },
  {
    key: "mqttwk.http.read-users",
    type: "list",
    default: [],
    field: "httpReadUsers",
    doc: "Users of auth.password-file who may use the HTTP API read-only (GET routes).",
  },
  {
    key: "mqttwk.http.api-keys-file",
    type: "string",
    default: "",
    field: "httpApiKeysFile",
    doc: "File of hashed HTTP API keys (deno task api-key); empty = <data-dir>/api-keys.",
  },
  {
    key: "mqttwk.http.max-body",
    type: "bytes",
    default: 1048576,
    min: 1024,
    max: 67108864,
    field: "httpMaxBody",
    doc: "Largest HTTP request body accepted (larger: 413).",
  },
  {
    key: "jetty.contextPath",
    type: "string",
    default: "/",
    ignored: true,
    doc: "Jetty context path.",
  },
  {
    key: "jetty.threadpool.idleTimeout",
    type: "int",
    default: 60000,
    ignored: true,
    doc: "Jetty thread pool.",
  },
  {
    key: "jetty.threadpool.minThreads",
    type: "int",
    default: 10,
    ignored: true,
    doc: "Jetty thread pool.",
  },
  {
    key: "jetty.threadpool.maxThreads",
    type: "int",
    default: 200,
    ignored: true,
    doc: "Jetty thread pool.",
  },
  {
    key: "nutz.application.name",
    type: "string",
    default: "mqttwk",
    ignored: true,
    doc: "NutzBoot application name.",
  },
  {
    key: "nutz.propdoc.packages",
    type: "string",
    default: "",
    ignored: true,
    doc: "NutzBoot property documentation packages.",
  },
  // --- Listeners (additions of this implementation) --------------------------------------------
  {
    key: `${B}.tcp-enabled`,
    type: "bool",
    default: true,
    field: "tcpEnabled",
    doc: "Serve plain MQTT over TCP on port (false leaves only the TLS/WebSocket listeners).",
  },
  {
    key: `${B}.ssl-port`,
    type: "port",
    default: 8883,
    field: "sslPort",
    alias: "tls-port",
    doc: "MQTT over TLS port, served when TLS is on (ssl-enabled or ssl-cert-file); 0 = free port.",
  },
  {
    key: `${B}.wss-enabled`,
    type: "bool",
    default: true,
    field: "wssEnabled",
    doc: "Serve MQTT over secure WebSocket on wss-port when TLS is on.",
  },
  {
    key: `${B}.wss-port`,
    type: "port",
    default: 9443,
    field: "wssPort",
    alias: "wss-port",
    doc: "MQTT over secure WebSocket (wss://) port, at websocket-path; 0 picks a free port.",
  },
  {
    key: `${B}.ssl-cert-file`,
    type: "string",
    default: "",
    field: "sslCertFile",
    doc: "PEM certificate chain; setting it turns TLS on. Empty = keystore/server.pem.",
  },
  {
    key: `${B}.ssl-key-file`,
    type: "string",
    default: "",
    field: "sslKeyFile",
    doc: "PEM private key (encrypted: see ssl-password). Empty = keystore/server.key.",
  },
  {
    key: `${B}.ssl-client-auth`,
    type: "enum",
    values: ["none", "optional", "required"],
    default: "none",
    field: "sslClientAuth",
    doc: "Client certificates (mutual TLS): none; optional = verified when sent; required.",
  },
  {
    key: `${B}.ssl-ca-file`,
    type: "string",
    default: "",
    field: "sslCaFile",
    doc: "PEM CA certificate(s) that client certificates must chain to (with ssl-client-auth).",
  },
  {
    key: `${B}.ssl-cn-as-username`,
    type: "bool",
    default: false,
    field: "sslCnAsUsername",
    doc: "Use a verified client certificate's CN as the MQTT username, replacing the CONNECT's.",
  },
  {
    key: `${B}.ssl-watch-interval`,
    type: "duration",
    default: 10,
    min: 0,
    field: "sslWatchInterval",
    doc: "Seconds between checks of the TLS files for changes; 0 = reload only on SIGHUP.",
  },
  {
    key: `${B}.proxy-protocol`,
    type: "list",
    default: [],
    field: "proxyProtocol",
    doc: "Listeners that require a PROXY protocol v1/v2 header: any of tcp, tls, ws, wss.",
  },
  {
    key: `${B}.proxy-protocol-timeout`,
    type: "duration",
    default: 5,
    min: 0.01,
    field: "proxyProtocolTimeout",
    doc: "Seconds a connection may take to send its PROXY protocol header.",
  },
  {
    key: `${B}.websocket-trusted-proxies`,
    type: "list",
    default: [],
    field: "websocketTrustedProxies",
    doc: "Proxy IPs or IPv4 CIDRs whose X-Forwarded-For / X-Real-IP name the WebSocket client.",
  },
] as const satisfies readonly Row[];

type SchemaRow = (typeof SCHEMA)[number];
type ActiveRow = Extract<SchemaRow, { field: string }>;

type ValueOf<R> = R extends { type: "enum"; values: readonly (infer V)[] } ? V
  : R extends { type: "bool" } ? boolean
  : R extends { type: "list" } ? string[]
  : R extends { type: "string" } ? string
  : number;

/** One property per non-ignored row, typed from the row (enums become string-literal unions). */
export type ConfigFields = { -readonly [R in ActiveRow as R["field"]]: ValueOf<R> };

/** Every row, typed loosely, for code that iterates the table. */
export const ROWS: readonly Row[] = SCHEMA;

export const ROW_BY_KEY: ReadonlyMap<string, Row> = new Map(ROWS.map((r) => [r.key, r]));

/**
 * Every proper prefix of a key ("mqttwk", "mqttwk.broker", "redis.pool", ...): YAML mappings at
 * these paths are descended into; anything else that is not a key is unknown.
 */
export const SECTIONS: ReadonlySet<string> = new Set(
  ROWS.flatMap((r) => {
    const parts = r.key.split(".");
    return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join("."));
  }),
);

/**
 * Environment names for a key: `MQTTWK_BROKER_WEBSOCKET_PORT`, then Spring's relaxed form with
 * dashes dropped, `MQTTWK_BROKER_WEBSOCKETPORT` (only listed when it differs).
 */
export function envNames(row: Row): string[] {
  const primary = row.key.toUpperCase().replace(/[.-]/g, "_");
  const relaxed = row.key.toUpperCase().replace(/-/g, "").replace(/\./g, "_");
  return relaxed === primary ? [primary] : [primary, relaxed];
}

/** Command-line flags for a key, without `--`: the dotted key, then the short alias if any. */
export function flagNames(row: Row): string[] {
  return row.alias ? [row.key, row.alias] : [row.key];
}

/** Human description of what a row accepts, used in error messages and `--help`. */
export function expectation(row: Row): string {
  const range = (unit = "") => {
    const u = unit ? ` ${unit}` : "";
    if (row.min !== undefined && row.max !== undefined) return ` from ${row.min} to ${row.max}${u}`;
    if (row.min !== undefined) return ` of at least ${row.min}${u}`;
    if (row.max !== undefined) return ` of at most ${row.max}${u}`;
    return u;
  };
  switch (row.type) {
    case "string":
      return "a string";
    case "int": {
      const syn = row.synonyms ? ` or ${Object.keys(row.synonyms).map((s) => `"${s}"`)}` : "";
      return `an integer${range()}${syn}`;
    }
    case "bool":
      return "true or false (yes/no/on/off also accepted)";
    case "port":
      return `a port number from ${row.min ?? 0} to ${row.max ?? 65535}`;
    case "enum":
      return `one of ${(row.values ?? []).join(", ")}`;
    case "list":
      return "a list (YAML sequence or comma-separated string)";
    case "bytes":
      return `a byte size${range("bytes")}, e.g. 1048576 or "1MiB"`;
    case "duration":
      return `a duration${range("seconds")}, in seconds or e.g. "500ms", "30s", "5m", "2h"`;
  }
}
