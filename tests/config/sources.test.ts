import assert from "node:assert/strict";
import { DEFAULT_CONFIG_PATH, loadConfig } from "../../src/config/load.ts";
import { assertConfigError, fakeFiles, noFiles } from "./helpers.ts";

const fileYaml = `
mqttwk:
  broker:
    port: 1883
    websocket-port: 8083
    log-level: debug
    max-packet-size: 256KiB
    connect-timeout: 1500ms
    ssl-password: 0123
    kafka:
      acks: all
redis:
  host: redis.local
server:
  port: 0
`;

Deno.test("values in the YAML file override the defaults", () => {
  const { config, warnings } = loadConfig({
    args: ["--config", "my.yaml"],
    env: {},
    readTextFile: fakeFiles({ "my.yaml": fileYaml }),
  });
  assert.deepEqual(warnings, []);
  assert.equal(config.source, "my.yaml");
  assert.equal(config.port, 1883);
  assert.equal(config.websocketPort, 8083);
  assert.equal(config.logLevel, "debug");
  assert.equal(config.maxPacketSize, 256 * 1024);
  assert.equal(config.connectTimeout, 1.5);
  assert.equal(config.sslPassword, "0123", "numeric-looking strings keep their spelling");
  assert.equal(config.kafkaAcks, -1);
  assert.equal(config.redisHost, "redis.local");
  assert.equal(config.httpPort, 0);
  assert.equal(config.keepAlive, 60, "keys not in the file keep their default");
});

Deno.test("the file can be chosen with --config=FILE or MQTTWK_CONFIG", () => {
  const readTextFile = fakeFiles({ "a.yaml": "server: {port: 1}", "b.yaml": "server: {port: 2}" });
  const viaEquals = loadConfig({ args: ["--config=a.yaml"], env: {}, readTextFile });
  assert.equal(viaEquals.config.httpPort, 1);
  const viaEnv = loadConfig({ args: [], env: { MQTTWK_CONFIG: "b.yaml" }, readTextFile });
  assert.equal(viaEnv.config.httpPort, 2);
  const flagBeatsEnv = loadConfig({
    args: ["--config", "a.yaml"],
    env: { MQTTWK_CONFIG: "b.yaml" },
    readTextFile,
  });
  assert.equal(flagBeatsEnv.config.httpPort, 1);
});

Deno.test("config/application.yaml is read when no file is named", () => {
  const { config } = loadConfig({
    args: [],
    env: {},
    readTextFile: fakeFiles({ [DEFAULT_CONFIG_PATH]: "mqttwk: {broker: {port: 7}}" }),
  });
  assert.equal(config.port, 7);
  assert.equal(config.source, DEFAULT_CONFIG_PATH);
});

Deno.test("environment variables override defaults, in both the underscore and Spring forms", () => {
  const { config, warnings } = loadConfig({
    args: [],
    env: {
      MQTTWK_BROKER_WEBSOCKET_PORT: "9001",
      MQTTWK_BROKER_MAXINFLIGHT: "7",
      MQTTWK_BROKER_WEBSOCKET_ENABLED: "no",
      MQTTWK_BROKER_SSLENABLED: "on",
      MQTTWK_BROKER_PERSISTENCE: "MEMORY",
      MQTTWK_BROKER_KAFKA_BOOTSTRAP_SERVERS: "k1:9092,k2:9092",
      REDIS_HOST: "10.0.0.5",
      SERVER_PORT: "8080",
      PATH: "/usr/bin",
    },
    readTextFile: noFiles,
  });
  assert.deepEqual(warnings, []);
  assert.equal(config.websocketPort, 9001);
  assert.equal(config.maxInflight, 7);
  assert.equal(config.websocketEnabled, false);
  assert.equal(config.sslEnabled, true);
  assert.equal(config.persistence, "memory");
  assert.equal(config.kafkaBootstrapServers, "k1:9092,k2:9092");
  assert.equal(config.redisHost, "10.0.0.5");
  assert.equal(config.httpPort, 8080);
});

Deno.test("an empty host from the environment means all interfaces", () => {
  const { config } = loadConfig({
    args: [],
    env: { MQTTWK_BROKER_HOST: "" },
    readTextFile: noFiles,
  });
  assert.equal(config.host, "0.0.0.0");
});

Deno.test("an unrecognised MQTTWK_ variable is reported but does not stop start-up", () => {
  const { warnings } = loadConfig({
    args: [],
    env: { MQTTWK_BROKER_PROT: "1" },
    readTextFile: noFiles,
  });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /MQTTWK_BROKER_PROT.*MQTTWK_BROKER_PORT/);
});

Deno.test("flags override defaults as --key=value, --key value and short aliases", () => {
  const { config } = loadConfig({
    args: [
      "--mqttwk.broker.keep-alive=30",
      "--mqttwk.broker.max-queued-messages",
      "5",
      "--mqttwk.broker.queue-full-policy=drop-oldest",
      "--mqttwk.broker.kafka.acks",
      "-1",
      "--host",
      "127.0.0.1",
      "--port=0",
      "--ws-port",
      "0",
      "--log-level=warn",
      "--persistence",
      "memory",
      "--data-dir=/tmp/x",
      "--broker-id",
      "b1",
      "--node-id=n1",
      "--redis.port=6380",
    ],
    env: {},
    readTextFile: noFiles,
  });
  assert.equal(config.keepAlive, 30);
  assert.equal(config.maxQueuedMessages, 5);
  assert.equal(config.queueFullPolicy, "drop-oldest");
  assert.equal(config.kafkaAcks, -1);
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.port, 0);
  assert.equal(config.websocketPort, 0);
  assert.equal(config.logLevel, "warn");
  assert.equal(config.persistence, "memory");
  assert.equal(config.dataDir, "/tmp/x");
  assert.equal(config.brokerId, "b1");
  assert.equal(config.nodeId, "n1");
  assert.equal(config.redisPort, 6380);
});

Deno.test("a boolean flag without a value means true, and may be followed by true/false", () => {
  const bare = loadConfig({
    args: ["--mqttwk.broker.ssl-enabled", "--port=1"],
    env: {},
    readTextFile: noFiles,
  });
  assert.equal(bare.config.sslEnabled, true);
  assert.equal(bare.config.port, 1);
  const spaced = loadConfig({
    args: ["--mqttwk.broker.websocket-enabled", "false"],
    env: {},
    readTextFile: noFiles,
  });
  assert.equal(spaced.config.websocketEnabled, false);
});

Deno.test("flags beat environment, which beats the file, which beats defaults", () => {
  const readTextFile = fakeFiles({
    "p.yaml": "mqttwk: {broker: {port: 1001, websocket-port: 1002, keep-alive: 11}}",
  });
  const { config } = loadConfig({
    args: ["--config", "p.yaml", "--port", "3001"],
    env: { MQTTWK_BROKER_PORT: "2001", MQTTWK_BROKER_WEBSOCKET_PORT: "2002" },
    readTextFile,
  });
  assert.equal(config.port, 3001, "flag wins over env and file");
  assert.equal(config.websocketPort, 2002, "env wins over file");
  assert.equal(config.keepAlive, 11, "file wins over default");
  assert.equal(config.maxInflight, 32, "default when nothing sets it");
});

Deno.test("the underscore environment form wins when both forms are set", () => {
  const { config, warnings } = loadConfig({
    args: [],
    env: { MQTTWK_BROKER_KEEP_ALIVE: "5", MQTTWK_BROKER_KEEPALIVE: "6" },
    readTextFile: noFiles,
  });
  assert.equal(config.keepAlive, 5);
  assert.equal(warnings.length, 1);
});

Deno.test("the same port for MQTT and WebSocket is rejected unless WebSocket is off", () => {
  assertConfigError(
    () => loadConfig({ args: ["--port=1883", "--ws-port=1883"], env: {}, readTextFile: noFiles }),
    "mqttwk.broker.port",
    "mqttwk.broker.websocket-port",
  );
  const { config } = loadConfig({
    args: ["--port=1883", "--ws-port=1883", "--mqttwk.broker.websocket-enabled=false"],
    env: {},
    readTextFile: noFiles,
  });
  assert.equal(config.port, 1883);
});
