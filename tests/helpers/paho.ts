/** Runs one of the Eclipse Paho (Python) client scripts in tests/e2e/ against a broker. */
import assert from "node:assert/strict";

/**
 * Runs `tests/e2e/<script>` with /usr/bin/python3 as `script host port prefix` and returns the
 * JSON object its last stdout line holds; a script that reports `error` fails the test with its
 * stderr.
 */
export async function runPahoScript(
  script: string,
  port: number,
  prefix: string,
): Promise<Record<string, unknown>> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      new URL(`../e2e/${script}`, import.meta.url).pathname,
      "127.0.0.1",
      String(port),
      prefix,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const r = JSON.parse(text.split("\n").pop() || "{}");
  assert.equal(r.error, undefined, `${r.error}\n${new TextDecoder().decode(out.stderr)}`);
  return r;
}
