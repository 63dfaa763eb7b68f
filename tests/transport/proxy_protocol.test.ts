import assert from "node:assert/strict";
import { ProxyHeaderParser, ProxyProtocolError } from "../../src/transport/proxy_protocol.ts";

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(cmd: number, fam: number, body: number[]): Uint8Array {
  return new Uint8Array([...SIG, 0x20 | cmd, fam, body.length >> 8, body.length & 0xff, ...body]);
}

/** Feeds `bytes` one byte at a time, the worst chunking there is. */
function byteByByte(bytes: Uint8Array) {
  const p = new ProxyHeaderParser();
  for (let i = 0; i < bytes.length; i++) {
    const r = p.push(bytes.subarray(i, i + 1));
    if (r.done) return { ...r, consumed: i + 1 };
  }
  return undefined;
}

Deno.test("a v1 TCP4 header gives the client address and leaves the MQTT bytes", () => {
  const r = new ProxyHeaderParser().push(
    enc.encode("PROXY TCP4 198.51.100.7 10.0.0.1 51000 1883\r\n\x10\x0c"),
  );
  assert.ok(r.done);
  assert.equal(r.header.source, "198.51.100.7:51000");
  assert.equal(r.header.destination, "10.0.0.1:1883");
  assert.deepEqual([...r.rest], [0x10, 0x0c]);
});

Deno.test("a v1 header split into single bytes is parsed the same", () => {
  const r = byteByByte(enc.encode("PROXY TCP6 2001:db8::1 2001:db8::2 4000 1883\r\n"));
  assert.equal(r?.header.source, "2001:db8::1:4000");
});

Deno.test("v1 UNKNOWN keeps the socket's own address", () => {
  const r = new ProxyHeaderParser().push(enc.encode("PROXY UNKNOWN\r\n"));
  assert.ok(r.done);
  assert.equal(r.header.source, undefined);
});

Deno.test("v2 IPv4 and IPv6 headers give the client address, byte by byte too", () => {
  const ipv4 = v2(1, 0x11, [203, 0, 113, 9, 10, 0, 0, 1, 0xc3, 0x50, 0x07, 0x5b]);
  const r4 = byteByByte(new Uint8Array([...ipv4, 0x10]));
  assert.equal(r4?.header.source, "203.0.113.9:50000");
  assert.equal(r4?.consumed, ipv4.length);
  const src6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
  const dst6 = new Array(16).fill(0);
  const r6 = new ProxyHeaderParser().push(v2(1, 0x21, [...src6, ...dst6, 0, 80, 0, 81]));
  assert.ok(r6.done);
  assert.equal(r6.header.source, "2001:db8::1:80");
});

Deno.test("v2 LOCAL (a health check by the proxy) and TLVs are accepted", () => {
  const local = new ProxyHeaderParser().push(v2(0, 0x00, []));
  assert.ok(local.done);
  assert.equal(local.header.source, undefined);
  const tlv = [0x04, 0x00, 0x02, 0xab, 0xcd];
  const r = new ProxyHeaderParser().push(v2(1, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, ...tlv]));
  assert.ok(r.done);
  assert.equal(r.header.source, "1.2.3.4:1");
});

Deno.test("MQTT without a header, garbage and oversized headers are rejected early", () => {
  assert.throws(
    () => new ProxyHeaderParser().push(new Uint8Array([0x10, 0x0c])),
    ProxyProtocolError,
  );
  assert.throws(
    () => new ProxyHeaderParser().push(enc.encode("PROXY TCP4 1.2.3\r\n")),
    /malformed/,
  );
  assert.throws(() => new ProxyHeaderParser().push(enc.encode("PROXY " + "x".repeat(120))), /107/);
  assert.throws(
    () => new ProxyHeaderParser().push(new Uint8Array([...SIG, 0x21, 0x11, 0xff, 0xff])),
    /exceeds/,
  );
  assert.throws(
    () => new ProxyHeaderParser().push(enc.encode("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n")),
    /malformed/,
  );
});
