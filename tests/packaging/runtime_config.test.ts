/**
 * The Docker build keeps only the import map entries the broker's entry points use
 * (scripts/docker/runtime_config.ts); the rest of the image test is tests/packaging/docker_image.
 */
import assert from "node:assert/strict";
import { usedKeys } from "../../scripts/docker/runtime_config.ts";

Deno.test("the runtime import map keeps the entries the code imports, exactly or by prefix", () => {
  const imports = {
    yaml: "npm:yaml@2.9.1",
    mqtt: "npm:mqtt@5.16.0",
    kafkajs: "npm:kafkajs@2.2.4",
    "std/": "npm:std/",
    "playwright-core": "npm:playwright-core@1.65.1",
  };
  const used = new Set(["yaml", "kafkajs/sub", "std/path", "./local.ts", "node:fs"]);
  assert.deepEqual(usedKeys(imports, used), ["yaml", "kafkajs", "std/"]);
});
