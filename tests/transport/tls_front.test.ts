/**
 * The TLS front behind a PROXY protocol header, in-process: the header and the ClientHello in
 * one segment, as a proxy that forwards a client's first flight at once sends them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { listenFront } from "../../src/transport/tls.ts";
import { silentLogger as quiet } from "../../src/log.ts";
import { makeCerts } from "./helpers.ts";

/**
 * A TLS client whose first flight goes out in one write with `prefix` in front of it: TLS runs
 * over a JS stream, so the client decides what reaches the socket and when.
 */
function tlsBehind(port: number, prefix: Uint8Array): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, "127.0.0.1");
    let first = true;
    const carrier = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        raw.write(first ? Buffer.concat([prefix, chunk]) : chunk, cb);
        first = false;
      },
      final(cb) {
        raw.end(cb);
      },
    });
    raw.on("data", (b: Buffer) => carrier.push(b));
    raw.on("end", () => carrier.push(null));
    raw.on("error", reject);
    raw.on("connect", () => {
      const s = tls.connect({ socket: carrier, rejectUnauthorized: false });
      s.on("error", reject);
      s.on("secureConnect", () => resolve(s));
      s.on("close", () => {
        raw.destroy();
        reject(new Error("closed before the handshake completed"));
      });
    });
  });
}

Deno.test("tls behind PROXY: a ClientHello in the header's segment is not lost", async () => {
  const certs = await makeCerts();
  const material = {
    cert: await Deno.readTextFile(certs.serverCert),
    key: await Deno.readTextFile(certs.serverKey),
    summary: "test",
  };
  const addresses: string[] = [];
  const front = listenFront({
    hostname: "127.0.0.1",
    port: 0,
    name: "tls",
    proxyTimeout: 2,
    tls: { material, clientAuth: "none" },
    handshakeTimeout: 2,
  }, (fs) => {
    addresses.push(fs.remoteAddress);
    // An echo, so the test sees the TLS socket carry bytes both ways.
    fs.socket.on("data", (b: Buffer) => fs.socket.write(b));
  }, quiet);
  try {
    await front.ready;
    const header = new TextEncoder().encode("PROXY TCP4 203.0.113.7 10.0.0.1 40000 8883\r\n");
    for (let i = 0; i < 5; i++) {
      const s = await tlsBehind(front.port, header);
      const echoed = new Promise<string>((r) => s.once("data", (b: Buffer) => r(b.toString())));
      s.write(`ping ${i}`);
      assert.equal(await echoed, `ping ${i}`);
      s.destroy();
    }
    assert.deepEqual(addresses, Array(5).fill("203.0.113.7:40000"));
  } finally {
    front.close();
    await Deno.remove(certs.dir, { recursive: true });
  }
});
