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

/** argv: port, CA file, count: that many TLS clients handshake at once, then all close. */
const HANDSHAKE_CLIENTS = `
import socket, ssl, sys, threading
port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
conns, lock, go = [], threading.Lock(), threading.Barrier(n)
def one():
    go.wait()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60),
                        server_hostname="localhost")
    with lock:
        conns.append(s)
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(f"{len(conns)} handshakes")
`;

Deno.test(
  "tls: 100 clients handshaking at once all get in, and stalled clients that send no " +
    "ClientHello do not hold them back for the handshake timeout",
  async () => {
    const certs = await makeCerts();
    const material = {
      cert: await Deno.readTextFile(certs.serverCert),
      key: await Deno.readTextFile(certs.serverKey),
      summary: "test",
    };
    let served = 0;
    const all = Promise.withResolvers<void>();
    const front = listenFront(
      {
        hostname: "127.0.0.1",
        port: 0,
        name: "tls",
        tls: { material, clientAuth: "none" },
        handshakeTimeout: 30,
      },
      () => {
        if (++served === 100) all.resolve();
      },
      quiet,
    );
    const stalled: net.Socket[] = [];
    try {
      await front.ready;
      // More stalled sockets than the handshakes the front runs at once, all ahead in the queue.
      for (let i = 0; i < 16; i++) {
        const s = net.connect(front.port, "127.0.0.1");
        s.on("error", () => {});
        await new Promise((r) => s.once("connect", r));
        stalled.push(s);
      }
      const started = performance.now();
      // The clients are OpenSSL's (Python's ssl), in threads of another process.
      const py = new Deno.Command("python3", {
        args: ["-c", HANDSHAKE_CLIENTS, String(front.port), certs.ca, "100"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = await py;
      const dec = new TextDecoder();
      assert.equal(dec.decode(out.stdout).trim(), "100 handshakes", dec.decode(out.stderr));
      // TLS 1.3: the client is done one flight before the server hands the socket on.
      await all.promise;
      const took = performance.now() - started;
      // The handshake timeout is 30 s: waiting behind the stalled sockets would take that long.
      assert.ok(took < 10_000, `the handshakes took ${took.toFixed(0)} ms`);
    } finally {
      for (const s of stalled) s.destroy();
      front.close();
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
);
