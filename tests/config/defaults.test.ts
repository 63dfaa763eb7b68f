import assert from "node:assert/strict";
import { parse } from "yaml";
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfig, ROWS } from "../../src/config/load.ts";
import { fakeFiles, noFiles } from "./helpers.ts";
import { brokerOptionsFrom } from "../../src/config/broker_options.ts";
import { defaultBrokerOptions } from "../../src/broker/options.ts";

const shippedYaml = Deno.readTextFileSync(
  new URL("../../config/application.yaml", import.meta.url),
);

Deno.test("with no file, env or flags every setting has its documented default", () => {
  const { config, warnings } = loadConfig({ args: [], env: {}, readTextFile: noFiles });
  assert.deepEqual(warnings, []);
  assert.equal(config.source, "defaults");
  assert.equal(config.brokerId, "mqttwk");
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.port, 8885);
  assert.equal(config.websocketPort, 9995);
  assert.equal(config.websocketEnabled, true);
  assert.equal(config.websocketPath, "/mqtt");
  assert.equal(config.sslEnabled, false);
  assert.equal(config.sslPassword, "");
  assert.equal(config.passwordMust, false);
  assert.equal(config.keepAlive, 60);
  assert.equal(config.clusterOn, false);
  assert.equal(config.logLevel, "info");
  assert.equal(config.connectTimeout, 10);
  assert.equal(config.maxConnections, 19000);
  assert.equal(config.maxConnectionsPerIp, 1000);
  assert.equal(config.maxPacketSize, 1048576);
  assert.equal(config.maxTopicLevels, 128);
  assert.equal(config.maxTopicLength, 65535);
  assert.equal(config.maxSubscriptionsPerClient, 10000);
  assert.equal(config.maxInflight, 32);
  assert.equal(config.maxQueuedMessages, 1000);
  assert.equal(config.maxQueuedBytes, 0);
  assert.equal(config.queueFullPolicy, "drop-new");
  assert.equal(config.maxQueuedBytesTotal, 134217728);
  assert.equal(config.maxSessions, 100000);
  assert.equal(config.maxSessionsPerUser, 10000);
  assert.equal(config.maxSessionsPerAddress, 1000);
  assert.equal(config.maxRetainedMessages, 200000);
  assert.equal(config.maxRetainedBytes, 134217728);
  assert.equal(config.outboundBufferBytes, 1048576);
  assert.equal(config.slowConsumerTimeout, 30);
  assert.equal(config.retryInterval, 0);
  assert.equal(config.sessionExpiryInterval, 7200);
  assert.equal(config.maxKeepalive, 0);
  assert.equal(config.receiveMaximum, 65535);
  assert.equal(config.topicAliasMaximum, 10);
  assert.equal(config.maxQos, 2);
  assert.equal(config.retainAvailable, true);
  assert.equal(config.sharedSubscriptionAvailable, true);
  assert.equal(config.sharedSubscriptionStrategy, "round_robin");
  assert.equal(config.wildcardSubscriptionAvailable, true);
  assert.equal(config.responseInformation, "");
  assert.equal(config.persistence, "sqlite");
  assert.equal(config.dataDir, "./data");
  assert.equal(config.durability, "sync");
  assert.equal(config.commitIntervalMs, 5);
  assert.equal(config.nodeId, "");
  assert.equal(config.kafkaEnabled, false);
  assert.equal(config.kafkaBootstrapServers, "127.0.0.1:9092");
  assert.equal(config.kafkaAcks, -1);
  assert.equal(config.kafkaRetries, 3);
  assert.equal(config.kafkaBatchSize, 16384);
  assert.equal(config.kafkaLingerMs, 1);
  assert.equal(config.kafkaBufferMemory, 33554432);
  assert.equal(config.kafkaProducerTopic, "mqtt_publish");
  assert.equal(config.redisMode, "normal");
  assert.equal(config.redisHost, "127.0.0.1");
  assert.equal(config.redisPort, 6379);
  assert.equal(config.redisPassword, "");
  assert.equal(config.redisDatabase, 0);
  assert.equal(config.redisNodes, "");
  assert.equal(config.httpPort, 8922);
  assert.deepEqual(config, defaultConfig());
});

Deno.test("the shipped config/application.yaml loads without warnings and equals the defaults", () => {
  const { config, warnings } = loadConfig({
    args: [],
    env: {},
    readTextFile: fakeFiles({ [DEFAULT_CONFIG_PATH]: shippedYaml }),
  });
  assert.deepEqual(warnings, []);
  assert.equal(config.source, DEFAULT_CONFIG_PATH);
  assert.deepEqual({ ...config, source: "defaults" }, defaultConfig());
});

Deno.test("the shipped yaml sets every used key and mentions every compatibility key", () => {
  const present = new Set<string>();
  const flatten = (obj: unknown, prefix: string) => {
    if (obj !== null && typeof obj === "object" && !Array.isArray(obj)) {
      for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k);
    } else {
      present.add(prefix);
    }
  };
  flatten(parse(shippedYaml), "");
  const comments = shippedYaml.split("\n").filter((l) => l.trim().startsWith("#")).join("\n");
  for (const row of ROWS) {
    if (row.ignored) {
      const leaf = row.key.split(".").at(-1)!;
      assert.ok(comments.includes(`${leaf}:`), `${row.key} should appear commented out`);
    } else {
      assert.ok(present.has(row.key), `${row.key} should be set in config/application.yaml`);
    }
  }
});

Deno.test("a missing default config/application.yaml is not an error", () => {
  const { config } = loadConfig({ args: [], env: {}, readTextFile: noFiles });
  assert.equal(config.source, "defaults");
});

Deno.test("the broker core's own defaults are the configuration's defaults", () => {
  const configured = brokerOptionsFrom(defaultConfig(), defaultBrokerOptions.nodeId);
  // The embedded default persists durably; the core alone does not assume a durable store.
  assert.equal(configured.durable, true);
  assert.equal(configured.sysInterval, 10);
  assert.deepEqual({ ...configured, durable: false, sysInterval: 0 }, defaultBrokerOptions);
});

Deno.test("the MQTT 5 keys reach the broker core's options", () => {
  const { config, warnings } = loadConfig({
    args: [
      "--mqttwk.broker.max-keepalive=120",
      "--mqttwk.broker.receive-maximum=20",
      "--mqttwk.broker.topic-alias-maximum=0",
      "--mqttwk.broker.max-qos=1",
      "--mqttwk.broker.retain-available=false",
      "--mqttwk.broker.shared-subscription-available=false",
      "--mqttwk.broker.shared-subscription-strategy=least_inflight",
      "--mqttwk.broker.wildcard-subscription-available=false",
      "--mqttwk.broker.response-information=resp/",
      "--mqttwk.broker.session-expiry-interval=0",
      "--mqttwk.broker.max-publish-rate=50",
      "--mqttwk.broker.max-publish-burst=200",
    ],
    env: {},
    readTextFile: noFiles,
  });
  assert.deepEqual(warnings, []);
  const o = brokerOptionsFrom(config, "n");
  assert.equal(o.maxKeepalive, 120);
  assert.equal(o.receiveMaximum, 20);
  assert.equal(o.topicAliasMaximum, 0);
  assert.equal(o.maxQos, 1);
  assert.equal(o.retainAvailable, false);
  assert.equal(o.sharedSubscriptionAvailable, false);
  assert.equal(o.sharedSubscriptionStrategy, "least_inflight");
  assert.equal(o.responseInformation, "resp/");
  // 0 = never expires: no cap on an MQTT 5 Session Expiry Interval either.
  assert.equal(o.sessionExpiryInterval, 0xffffffff);
  assert.equal(o.subscriptionIdentifiersAvailable, true);
  assert.equal(o.wildcardSubscriptionAvailable, false);
  assert.equal(o.maxPublishRate, 50);
  assert.equal(o.maxPublishBurst, 200);
});

Deno.test("out-of-range MQTT 5 values are refused", () => {
  for (
    const arg of [
      "--mqttwk.broker.max-qos=3",
      "--mqttwk.broker.receive-maximum=0",
      "--mqttwk.broker.max-publish-rate=-1",
    ]
  ) {
    assert.throws(() => loadConfig({ args: [arg], env: {}, readTextFile: noFiles }), /mqttwk/);
  }
});
