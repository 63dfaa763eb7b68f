import assert from "node:assert/strict";
import { coerce } from "../../src/config/load.ts";
import { envNames, flagNames, ROWS, SECTIONS } from "../../src/config/schema.ts";

Deno.test("every schema key, field, environment name and flag is unique", () => {
  const seen = new Map<string, string>();
  const claim = (name: string, key: string) => {
    const prior = seen.get(name);
    assert.ok(prior === undefined || prior === key, `${name} is used by ${prior} and ${key}`);
    seen.set(name, key);
  };
  for (const row of ROWS) {
    claim(`key:${row.key}`, row.key);
    if (row.field) claim(`field:${row.field}`, row.key);
    for (const env of envNames(row)) claim(`env:${env}`, row.key);
    for (const flag of flagNames(row)) claim(`flag:${flag}`, row.key);
  }
  assert.ok(!seen.has("flag:config") && !seen.has("flag:help"), "--config and --help are reserved");
});

Deno.test("every used key has a field and no key is also a section", () => {
  for (const row of ROWS) {
    assert.ok(row.ignored || row.field, `${row.key} needs a field`);
    assert.ok(!SECTIONS.has(row.key), `${row.key} is both a key and a section`);
  }
});

Deno.test("every default passes its own row's validation", () => {
  for (const row of ROWS) {
    const value = coerce(row, Array.isArray(row.default) ? [...row.default] : row.default);
    assert.deepEqual(value, row.default, `default of ${row.key}`);
  }
});

Deno.test("environment names follow the key, with a dash-free Spring form", () => {
  const row = ROWS.find((r) => r.key === "mqttwk.broker.websocket-port")!;
  assert.deepEqual(envNames(row), ["MQTTWK_BROKER_WEBSOCKET_PORT", "MQTTWK_BROKER_WEBSOCKETPORT"]);
  assert.deepEqual(envNames(ROWS.find((r) => r.key === "server.port")!), ["SERVER_PORT"]);
});

Deno.test("sizes and durations accept units", () => {
  const size = ROWS.find((r) => r.key === "mqttwk.broker.max-queued-bytes")!;
  assert.equal(coerce(size, "1MiB"), 1048576);
  assert.equal(coerce(size, "64kb"), 65536);
  assert.equal(coerce(size, "2 G"), 2 * 1024 ** 3);
  assert.equal(coerce(size, "1.5MB"), undefined);
  assert.equal(coerce(size, "-1"), undefined);
  const time = ROWS.find((r) => r.key === "mqttwk.broker.retry-interval")!;
  assert.equal(coerce(time, "300ms"), 0.3);
  assert.equal(coerce(time, "2m"), 120);
  assert.equal(coerce(time, 5), 5);
  assert.equal(coerce(time, "1h"), 3600);
  assert.equal(coerce(time, "soon"), undefined);
});
