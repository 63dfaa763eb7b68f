import assert from "node:assert/strict";
import { HelpRequested, INVOCATION_ENV, loadConfig, usage } from "../../src/config/load.ts";
import { assertConfigError, fakeFiles, noFiles } from "./helpers.ts";

function fromFile(yaml: string) {
  return () =>
    loadConfig({
      args: ["--config", "conf/test.yaml"],
      env: {},
      readTextFile: fakeFiles({ "conf/test.yaml": yaml }),
    });
}

function fromEnv(env: Record<string, string>) {
  return () => loadConfig({ args: [], env, readTextFile: noFiles });
}

function fromFlags(...args: string[]) {
  return () => loadConfig({ args, env: {}, readTextFile: noFiles });
}

Deno.test("an unknown key in the file is rejected, naming the full key, file and line", () => {
  const yaml = "mqttwk:\n  broker:\n    port: 1883\n    prot: 1884\n";
  const err = assertConfigError(fromFile(yaml), "mqttwk.broker.prot", "conf/test.yaml", "line 4");
  assert.match(err.message, /did you mean mqttwk\.broker\.port/);
});

Deno.test("an unknown top-level section in the file is rejected", () => {
  assertConfigError(fromFile("spring:\n  profiles: dev\n"), "spring", "conf/test.yaml");
});

Deno.test("flat dotted keys in the file are rejected with a hint to nest them", () => {
  assertConfigError(fromFile("mqttwk.broker.port: 1\n"), "mqttwk.broker.port", "nested");
});

Deno.test("a scalar where a section is expected is rejected", () => {
  assertConfigError(fromFile("mqttwk:\n  broker: 5\n"), "mqttwk.broker", "mapping");
});

Deno.test("a wrong-typed value in the file names the key, file and expectation", () => {
  assertConfigError(
    fromFile("mqttwk:\n  broker:\n    port: eighty\n"),
    "mqttwk.broker.port",
    "conf/test.yaml line 3",
    "port number",
    '"eighty"',
  );
  assertConfigError(
    fromFile("mqttwk: {broker: {websocket-enabled: maybe}}"),
    "mqttwk.broker.websocket-enabled",
    "true or false",
  );
  assertConfigError(
    fromFile("mqttwk: {broker: {keep-alive: 1.5}}"),
    "mqttwk.broker.keep-alive",
    "integer",
  );
  assertConfigError(
    fromFile("mqttwk: {broker: {log-level: verbose}}"),
    "mqttwk.broker.log-level",
    "debug, info, warn, error",
  );
  assertConfigError(
    fromFile("mqttwk: {broker: {max-inflight: 0}}"),
    "mqttwk.broker.max-inflight",
    "from 1 to 65535",
  );
  assertConfigError(
    fromFile("mqttwk: {broker: {id: {nested: true}}}"),
    "mqttwk.broker.id",
    "a mapping",
  );
  assertConfigError(
    fromFile("mqttwk: {broker: {max-packet-size: 1 TB}}"),
    "mqttwk.broker.max-packet-size",
  );
});

Deno.test("a wrong-typed environment value names the variable and the key", () => {
  assertConfigError(
    fromEnv({ MQTTWK_BROKER_PORT: "70000" }),
    "MQTTWK_BROKER_PORT",
    "mqttwk.broker.port",
    "0 to 65535",
  );
  assertConfigError(
    fromEnv({ MQTTWK_BROKER_CONNECTTIMEOUT: "soon" }),
    "MQTTWK_BROKER_CONNECTTIMEOUT",
    "mqttwk.broker.connect-timeout",
  );
  assertConfigError(fromEnv({ REDIS_DATABASE: "-1" }), "REDIS_DATABASE", "redis.database");
});

Deno.test("a wrong-typed flag value names the flag and the key", () => {
  assertConfigError(fromFlags("--port=abc"), "--port", "mqttwk.broker.port");
  assertConfigError(
    fromFlags("--mqttwk.broker.max-topic-levels", "2.5"),
    "--mqttwk.broker.max-topic-levels",
    "mqttwk.broker.max-topic-levels",
  );
  assertConfigError(fromFlags("--persistence=redis"), "--persistence", "sqlite, memory");
});

Deno.test("secret values are not echoed in error messages", () => {
  const err = assertConfigError(
    fromFile("redis: {password: [hunter2]}"),
    "redis.password",
  );
  assert.ok(!err.message.includes("hunter2"));
});

Deno.test("unknown flags, stray arguments and missing flag values are rejected", () => {
  assertConfigError(fromFlags("--prot=1"), "--prot", "did you mean --port");
  assertConfigError(fromFlags("serve"), '"serve"');
  assertConfigError(fromFlags("--port"), "--port", "needs a value");
  assertConfigError(fromFlags("--port", "--host=x"), "--port", "needs a value");
});

Deno.test("an explicitly named config file that does not exist is an error naming it", () => {
  assertConfigError(
    () => loadConfig({ args: ["--config", "nope.yaml"], env: {}, readTextFile: noFiles }),
    "nope.yaml",
  );
  assertConfigError(
    () => loadConfig({ args: [], env: { MQTTWK_CONFIG: "gone.yaml" }, readTextFile: noFiles }),
    "gone.yaml",
  );
});

Deno.test("a YAML syntax error names the file and line", () => {
  assertConfigError(
    fromFile("mqttwk:\n  broker:\n    port: [1883\n    host: x\n"),
    "conf/test.yaml",
    "line",
    "YAML",
  );
  assertConfigError(
    fromFile("server:\n  port: 1\n  port: 2\n"),
    "conf/test.yaml line 3",
  );
});

Deno.test("--help asks the caller to print usage generated from the schema", () => {
  assert.throws(fromFlags("--port=1", "--help"), HelpRequested);
  assert.throws(fromFlags("-h"), HelpRequested);
  const text = usage();
  for (
    const part of ["--mqttwk.broker.port", "--ws-port", "MQTTWK_BROKER_WEBSOCKET_PORT", "--config"]
  ) {
    assert.ok(text.includes(part), `usage should mention ${part}`);
  }
});
Deno.test("--help shows the invocation the environment names, e.g. the Docker image's", () => {
  const help = (env: Record<string, string>) => {
    try {
      loadConfig({ args: ["--help"], env, readTextFile: noFiles });
    } catch (err) {
      if (err instanceof HelpRequested) return err.message.split("\n")[0];
      throw err;
    }
    throw new Error("--help did not ask for usage");
  };
  assert.equal(help({}), "Usage: deno task start [--config FILE] [--KEY=VALUE | --KEY VALUE]...");
  const docker = "docker run --net=host -v mqttwk-data:/app/data mqttwk";
  assert.ok(help({ [INVOCATION_ENV]: docker }).startsWith(`Usage: ${docker} [--config FILE]`));
  const { warnings } = loadConfig({
    args: [],
    env: { [INVOCATION_ENV]: docker },
    readTextFile: noFiles,
  });
  assert.deepEqual(warnings, [], `${INVOCATION_ENV} is not reported as an unknown key`);
});
