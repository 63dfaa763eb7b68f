/** Decoding MQTT strings (codec/utf8.ts readUtf8), including the cache of short ASCII ones. */
import assert from "node:assert/strict";
import { readUtf8, UTF8_ILL_FORMED, UTF8_NUL } from "../../src/codec/utf8.ts";

const enc = new TextEncoder();

Deno.test("readUtf8 decodes any string the same whether or not it was seen before", () => {
  // Many distinct strings share the cache's slots; every one must still decode to itself, at
  // any offset, the first time and again later.
  const words: string[] = [];
  for (let i = 0; i < 5000; i++) words.push(`sensors/${i % 97}/${i}/t`);
  words.push("", "a", "x".repeat(64), "y".repeat(65), "z".repeat(200), "grüße/ü", "日本/語");
  for (let pass = 0; pass < 3; pass++) {
    for (const w of words) {
      const bytes = enc.encode(w);
      const buf = new Uint8Array(bytes.length + 7);
      buf.set(bytes, 3);
      assert.equal(readUtf8(buf, 3, 3 + bytes.length), w);
    }
  }
});

Deno.test("readUtf8 keeps its own copy: changing the read buffer later changes no string", () => {
  const buf = enc.encode("plant/7/temp");
  assert.equal(readUtf8(buf, 0, buf.length), "plant/7/temp");
  buf[6] = "8".charCodeAt(0);
  assert.equal(readUtf8(buf, 0, buf.length), "plant/8/temp");
  buf[6] = "7".charCodeAt(0);
  assert.equal(readUtf8(buf, 0, buf.length), "plant/7/temp");
});

Deno.test("readUtf8 refuses U+0000 and ill-formed UTF-8, cached or not (3.1.1 1.5.3, 5.0 1.5.4)", () => {
  const ok = enc.encode("a/b");
  assert.equal(readUtf8(ok, 0, ok.length), "a/b");
  assert.equal(readUtf8(new Uint8Array([0x61, 0x00, 0x62]), 0, 3), UTF8_NUL);
  assert.equal(readUtf8(new Uint8Array([0x61, 0xed, 0xa0, 0x80]), 0, 4), UTF8_ILL_FORMED);
  assert.equal(readUtf8(new Uint8Array([0xc0, 0x80]), 0, 2), UTF8_ILL_FORMED);
  // The refusals are not cached as strings: the same bytes are refused again.
  assert.equal(readUtf8(new Uint8Array([0x61, 0x00, 0x62]), 0, 3), UTF8_NUL);
});
