/** The WebSocket opening handshake (RFC 6455 section 4): parsing the request and answering it. */
import assert from "node:assert/strict";
import {
  acceptKey,
  answerUpgrade,
  errorResponse,
  type RequestHead,
  RequestHeadParser,
} from "../../src/transport/ws_handshake.ts";
import { MQTT_SUBPROTOCOLS } from "../../src/transport/websocket.ts";
import { upgradeRequest } from "./helpers.ts";

const policy = { path: "/mqtt", subprotocols: MQTT_SUBPROTOCOLS };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function head(extra: Record<string, string> = {}, path = "/mqtt"): RequestHead {
  const r = new RequestHeadParser().feed(enc(upgradeRequest(path, extra)));
  if (!("done" in r) || !r.done) throw new Error("request not parsed");
  return r.head;
}

Deno.test("the accept key is SHA-1 of the key and the GUID, as in RFC 6455 section 1.3", () => {
  assert.equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("a request split byte by byte is parsed; bytes after the head are kept", () => {
  const p = new RequestHeadParser();
  const request = enc(upgradeRequest());
  const all = new Uint8Array([...request, 0x82]);
  let result;
  for (const b of all) {
    result = p.feed(new Uint8Array([b]));
    if ("done" in result && result.done) break;
  }
  assert.ok(result && "done" in result && result.done);
  assert.equal(result.head.headers.get("sec-websocket-version"), "13");
  assert.deepEqual([...result.rest], []);
  const whole = new RequestHeadParser().feed(all);
  assert.ok("done" in whole && whole.done);
  assert.deepEqual([...whole.rest], [0x82]);
});

Deno.test("a request head larger than the limit is refused with 431, terminated or not", () => {
  const big = upgradeRequest("/mqtt", { "x-pad": "a".repeat(200) });
  const open = new RequestHeadParser(100).feed(enc(big.slice(0, 150)));
  assert.ok("error" in open && open.error.status === 431);
  const whole = new RequestHeadParser(100).feed(enc(big));
  assert.ok("error" in whole && whole.error.status === 431);
});

Deno.test("a malformed request line or header line is refused with 400", () => {
  for (const text of ["NOT HTTP\r\n\r\n", "GET /mqtt HTTP/1.1\r\n folded\r\n\r\n"]) {
    const r = new RequestHeadParser().feed(enc(text));
    assert.ok("error" in r && r.error.status === 400, text);
  }
});

Deno.test("a valid upgrade gets 101 with the accept key and the chosen subprotocol (4.2.2)", () => {
  const up = answerUpgrade(head({ "sec-websocket-protocol": "chat, mqttv3.1" }), policy);
  assert.ok(up.ok);
  assert.equal(up.protocol, "mqttv3.1");
  const text = dec(up.response);
  assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(text, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
  assert.match(text, /\r\nSec-WebSocket-Protocol: mqttv3\.1\r\n\r\n$/);
});

Deno.test("a client that offers no subprotocol is accepted without one", () => {
  const up = answerUpgrade(head({ "sec-websocket-protocol": "" }), policy);
  assert.ok(up.ok);
  assert.equal(up.protocol, undefined);
  assert.doesNotMatch(dec(up.response), /Sec-WebSocket-Protocol/);
});

Deno.test("only unknown subprotocols are refused with 400", () => {
  const up = answerUpgrade(head({ "sec-websocket-protocol": "chat" }), policy);
  assert.ok(!up.ok && up.error.status === 400);
});

Deno.test("a version other than 13 gets 426 naming version 13 (4.2.2, 4.4)", () => {
  const up = answerUpgrade(head({ "sec-websocket-version": "8" }), policy);
  assert.ok(!up.ok);
  assert.equal(up.error.status, 426);
  assert.match(dec(errorResponse(up.error)), /\r\nsec-websocket-version: 13\r\n/i);
});

Deno.test("a key that is not 16 bytes of base64 is refused with 400 (4.1)", () => {
  for (const key of ["", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZXg=", "!!"]) {
    const up = answerUpgrade(head({ "sec-websocket-key": key }), policy);
    assert.ok(!up.ok && up.error.status === 400, key);
  }
});

Deno.test("another path is 404, a plain request 426, a non-GET or no Connection 400", () => {
  const other = answerUpgrade(head({}, "/other"), policy);
  assert.ok(!other.ok && other.error.status === 404);
  assert.ok(answerUpgrade(head({}, "/mqtt?x=1"), policy).ok, "a query does not change the path");
  const plain = answerUpgrade(head({ upgrade: "" }), policy);
  assert.ok(!plain.ok && plain.error.status === 426);
  assert.match(dec(errorResponse(plain.error)), /Connection: Upgrade, close\r\n/);
  const noConnection = answerUpgrade(head({ connection: "keep-alive" }), policy);
  assert.ok(!noConnection.ok && noConnection.error.status === 400);
  const post = head();
  post.method = "POST";
  const refused = answerUpgrade(post, policy);
  assert.ok(!refused.ok && refused.error.status === 400);
});

Deno.test("error responses are complete HTTP/1.1 messages that announce the close", () => {
  const text = dec(errorResponse({ status: 404, message: "Not found" }));
  assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(text, /\r\nContent-Length: 10\r\n/);
  assert.match(text, /\r\nConnection: close\r\n\r\nNot found\n$/);
});
