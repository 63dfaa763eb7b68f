import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/load.ts";
import { fakeFiles, noFiles } from "./helpers.ts";

/** The Java MqttWk's src/main/resources/application.yaml, as a migrating user would bring it. */
const originalYaml = `
redis:
  host: 127.0.0.1
  port: 6379
  timeout: 2000
  max_redir: 10
  database: 0
  maxTotal: 100
  password:
  pool:
    maxTotal: 200
    maxIdle: 50
    minIdle: 10
  mode: normal
  nodes:
mqttwk:
  broker:
    id: mqttwk
    host:
    port: 8885
    websocket-port: 9995
    websocket-enabled: true
    bossGroup-nThreads: 4
    workerGroup-nThreads: 200
    cluster-on: false
    ssl-enabled: false
    ssl-password: 123456
    mqtt-password-must: true
    keep-alive: 60
    use-epoll: false
    so-backlog: 511
    so-keep-alive: true
    kafka:
      broker-enabled: false
      bootstrap:
        servers: 127.0.0.1:9092
      acks: -1
      retries: 3
      batch:
        size: 16384
      linger:
        ms: 1
      buffer:
        memory: 33554432
      key:
        serializer: org.apache.kafka.common.serialization.StringSerializer
      value:
        serializer: org.apache.kafka.common.serialization.StringSerializer
      partitioner:
        class: cn.wizzer.iot.mqtt.server.broker.config.SimplePartitioner
      producer:
        topic: mqtt_publish
server:
  port: 8922
jetty:
  contextPath: /
  threadpool:
    idleTimeout: 60000
    minThreads: 10
    maxThreads: 200
nutz:
  application:
    name: mqttwk
  propdoc:
    packages: cn.wizzer.iot.mqtt.server.broker.config
`;

const ignoredInOriginal = [
  "mqttwk.broker.bossGroup-nThreads",
  "mqttwk.broker.workerGroup-nThreads",
  "mqttwk.broker.use-epoll",
  "mqttwk.broker.so-backlog",
  "mqttwk.broker.so-keep-alive",
  "mqttwk.broker.kafka.key.serializer",
  "mqttwk.broker.kafka.value.serializer",
  "mqttwk.broker.kafka.partitioner.class",
  "redis.timeout",
  "redis.max_redir",
  "redis.maxTotal",
  "redis.pool.maxTotal",
  "redis.pool.maxIdle",
  "redis.pool.minIdle",
  "jetty.contextPath",
  "jetty.threadpool.idleTimeout",
  "jetty.threadpool.minThreads",
  "jetty.threadpool.maxThreads",
  "nutz.application.name",
  "nutz.propdoc.packages",
];

Deno.test("the original broker's full application.yaml loads, with warnings for unused keys", () => {
  const { config, warnings } = loadConfig({
    args: ["--config", "application.yaml"],
    env: {},
    readTextFile: fakeFiles({ "application.yaml": originalYaml }),
  });
  assert.equal(config.host, "0.0.0.0", "an empty host means all interfaces");
  assert.equal(config.port, 8885);
  assert.equal(config.websocketPort, 9995);
  assert.equal(config.sslPassword, "123456");
  assert.equal(config.passwordMust, true);
  assert.equal(config.redisPassword, "", "an unset password stays empty");
  assert.equal(config.redisNodes, "");
  assert.equal(config.kafkaProducerTopic, "mqtt_publish");
  assert.equal(config.httpPort, 8922);

  assert.equal(warnings.length, ignoredInOriginal.length);
  for (const key of ignoredInOriginal) {
    assert.ok(
      warnings.some((w) => w.startsWith(`${key} `) && w.includes("application.yaml")),
      `expected a warning naming ${key}`,
    );
  }
});

Deno.test("original keys set through env or flags are also accepted and reported", () => {
  const { warnings } = loadConfig({
    args: ["--mqttwk.broker.use-epoll=true", "--jetty.threadpool.maxThreads", "9"],
    env: { MQTTWK_BROKER_SO_BACKLOG: "1024", MQTTWK_BROKER_BOSSGROUP_NTHREADS: "2" },
    readTextFile: noFiles,
  });
  for (
    const key of [
      "mqttwk.broker.use-epoll",
      "jetty.threadpool.maxThreads",
      "mqttwk.broker.so-backlog",
      "mqttwk.broker.bossGroup-nThreads",
    ]
  ) {
    assert.ok(warnings.some((w) => w.startsWith(`${key} `)), `expected a warning naming ${key}`);
  }
});

Deno.test("yes/no/on/off are read as booleans in the file, as the original's YAML 1.1 parser did", () => {
  const { config } = loadConfig({
    args: ["--config", "f.yaml"],
    env: {},
    readTextFile: fakeFiles({
      "f.yaml": "mqttwk: {broker: {ssl-enabled: yes, websocket-enabled: off}}",
    }),
  });
  assert.equal(config.sslEnabled, true);
  assert.equal(config.websocketEnabled, false);
});
