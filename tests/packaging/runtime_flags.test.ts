/**
 * The broker's V8 flags (a small young generation keeps idle connections cheap, see README
 * "Performance") must be the same however it is shipped: `deno task start`, the compiled
 * binary, and the Docker image. The bench reads them from the start task.
 */
import assert from "node:assert/strict";
import { START_V8_FLAGS } from "../../bench/brokers.ts";

const root = new URL("../../", import.meta.url);
const tasks = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root))).tasks;

function v8Flags(command: string): string[] {
  return command.split(/[\s",[\]]+/).filter((a) => a.startsWith("--v8-flags="));
}

Deno.test("deno task start runs the broker with a capped young generation", () => {
  assert.deepEqual(v8Flags(tasks.start), ["--v8-flags=--max-semi-space-size=4"]);
});

Deno.test("the compiled binary and the Docker image use the start task's V8 flags", () => {
  assert.deepEqual(v8Flags(tasks.compile), v8Flags(tasks.start));
  const entry = Deno.readTextFileSync(new URL("Dockerfile", root))
    .split("\n").find((l) => l.startsWith("ENTRYPOINT"));
  assert.ok(entry, "Dockerfile has an ENTRYPOINT");
  assert.deepEqual(v8Flags(entry), v8Flags(tasks.start));
});

Deno.test("the bench starts MqttWk with the start task's V8 flags", () => {
  assert.deepEqual(START_V8_FLAGS, v8Flags(tasks.start));
});
