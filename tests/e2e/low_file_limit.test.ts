/** Start-up under an open-file limit that leaves no room for clients (issue 16, finding 11). */
import assert from "node:assert/strict";
import { EXTERNAL } from "../helpers/broker.ts";

const REPO_ROOT = new URL("../../", import.meta.url);

Deno.test({
  name: "the broker refuses to start with exit code 1 when ulimit -n leaves no room for clients",
  ignore: EXTERNAL, // runs its own broker
  fn: async () => {
    const out = await new Deno.Command("prlimit", {
      args: [
        "--nofile=150:150",
        Deno.execPath(),
        "run",
        "--allow-all",
        "main.ts",
        "--port",
        "0",
        "--persistence",
        "memory",
        "--mqttwk.broker.websocket-enabled=false",
      ],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const line = text.split("\n").find((l) => /open-file limit/.test(l)) ?? "";
    console.log(`exit code ${out.code}: ${line}`);
    assert.equal(out.code, 1, text);
    assert.match(line, /cannot start: the open-file limit 150 leaves no room for clients/);
    assert.match(line, /ulimit -n/);
    assert.match(line, /mqttwk\.broker\.max-connections/);
  },
});
