/** The logger writes one line per message, whatever the message holds. */
import assert from "node:assert/strict";
import { createLogger, escapeLog } from "../src/log.ts";

Deno.test("control characters in a log message are written as escapes", () => {
  const cases: [string, string][] = [
    ["a\nb", "a\\nb"],
    ["a\r\nb", "a\\r\\nb"],
    ["tab\there", "tab\\there"],
    ["\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"],
    ["nul\x00 del\x7f c1\x85\x9b", "nul\\x00 del\\x7f c1\\x85\\x9b"],
    ["ls\u2028ps\u2029", "ls\\u2028ps\\u2029"],
    ['kept: \\ " é ü 漢 😀', 'kept: \\ " é ü 漢 😀'],
  ];
  for (const [input, want] of cases) assert.equal(escapeLog(input), want, JSON.stringify(input));
  const clean = "client c1 connected from 127.0.0.1:5000";
  assert.equal(escapeLog(clean), clean);
});

Deno.test("every logger level writes exactly one line for a message with newlines", () => {
  const out: string[] = [];
  const original = { log: console.log, error: console.error };
  console.log = (s: string) => out.push(s);
  console.error = (s: string) => out.push(s);
  try {
    const log = createLogger("debug");
    const forged = "x\n2026-01-01T00:00:00.000Z INFO  client admin connected from 10.0.0.1";
    log.debug(forged);
    log.info(forged);
    log.warn(forged);
    log.error(`failed: ${new Error("boom").stack}`);
  } finally {
    Object.assign(console, original);
  }
  const lines = out.join("\n").split(/\r\n|[\n\r\u2028\u2029]/);
  console.log(`${out.length} messages written as ${lines.length} lines`);
  assert.equal(lines.length, 4);
  assert.match(lines[3], /ERROR failed: Error: boom\\n {4}at /, "a stack stays readable");
});
