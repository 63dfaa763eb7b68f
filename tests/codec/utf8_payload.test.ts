/** isWellFormedUtf8: the Payload Format Indicator check, against the platform's strict decoder. */
import assert from "node:assert/strict";
import { isWellFormedUtf8 } from "../../src/codec/utf8.ts";

const strict = new TextDecoder("utf-8", { fatal: true });
function wellFormed(b: Uint8Array): boolean {
  try {
    strict.decode(b);
    return true;
  } catch {
    return false;
  }
}

Deno.test("isWellFormedUtf8 rejects truncated, overlong, surrogate and out-of-range forms (RFC 3629, 3.3.2.3.2)", () => {
  const cases: [number[], boolean][] = [
    [[], true],
    [[0x00], true],
    [[0x61, 0xc3, 0xa9], true],
    [[0xf0, 0x9f, 0x98, 0x80], true],
    [[0xef, 0xbf, 0xbf], true],
    [[0xc3], false],
    [[0xe2, 0x82], false],
    [[0xc0, 0xaf], false],
    [[0xe0, 0x80, 0xaf], false],
    [[0xed, 0xa0, 0x80], false],
    [[0xf4, 0x90, 0x80, 0x80], false],
    [[0xf5, 0x80, 0x80, 0x80], false],
    [[0x80], false],
    [[0xc3, 0x28], false],
  ];
  for (const [bytes, ok] of cases) {
    assert.equal(
      isWellFormedUtf8(new Uint8Array(bytes)),
      ok,
      bytes.map((x) => x.toString(16)).join(" "),
    );
  }
});

Deno.test("isWellFormedUtf8 agrees with the strict TextDecoder on random byte strings", () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let n = 0; n < 20_000; n++) {
    const len = Math.floor(rnd() * 8);
    const b = new Uint8Array(len);
    // Bias towards bytes that start and continue multi-byte forms.
    for (let i = 0; i < len; i++) {
      b[i] = rnd() < 0.5 ? 0x80 + Math.floor(rnd() * 0x80) : Math.floor(rnd() * 256);
    }
    assert.equal(isWellFormedUtf8(b), wellFormed(b), [...b].map((x) => x.toString(16)).join(" "));
  }
});
