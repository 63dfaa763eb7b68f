/**
 * Descriptor exhaustion on every listener: the broker runs under a 300 open-file limit and each
 * listener in turn gets 400 sockets that never become an MQTT session (idle, half a TLS
 * ClientHello, half an upgrade request, half a PROXY header, half an HTTP request). The process
 * must survive, and once the sockets are gone the listener must serve a real client again.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { type Broker, EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { waitFor } from "../helpers/wait.ts";
import { connect as connectPacket } from "../helpers/raw.ts";
import { brokerPid, connackCode } from "../auth/e2e_helpers.ts";
import { listenerPort, makeCerts, readerOf } from "../transport/helpers.ts";

const FILE_LIMIT = 300;
/** More sockets than the broker has descriptors. */
const FLOOD = 400;
/** How long a listener may take to serve again once the flood is gone. */
const RECOVERY_TIMEOUT_MS = 20_000;

/** A TLS record header and the start of a ClientHello: a handshake that never finishes. */
const HALF_CLIENT_HELLO = Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]);
const enc = new TextEncoder();

interface Target {
  name: string;
  port: number;
  /** What each flooding socket sends before falling silent (nothing for an idle socket). */
  opening?: Uint8Array;
  /** Resolves once a real client was served through this listener. */
  serve(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    return Deno.statSync(`/proc/${pid}`).isDirectory;
  } catch {
    return false;
  }
}

function peakRssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmHWM:\s+(\d+)/)![1]) / 1024;
}

async function mqttServed(url: string): Promise<void> {
  const code = await connackCode(url, { connectTimeout: 2_000, rejectUnauthorized: false });
  if (code !== 0) throw new Error(`CONNACK ${code}`);
}

/** CONNECT behind a PROXY v1 header, optionally inside TLS; resolves on CONNACK accepted. */
function proxiedServed(port: number, withTls: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, "127.0.0.1");
    let sock: net.Socket = raw;
    const timer = setTimeout(() => fail(new Error("no CONNACK within 2 s")), 2_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      raw.destroy();
      reject(e);
    };
    raw.on("error", fail);
    // Written before TLS starts on the same socket: the header precedes the ClientHello.
    raw.write("PROXY TCP4 10.1.2.3 10.0.0.1 40000 1883\r\n");
    const hello = () => sock.write(connectPacket({ clientId: uid("px") }));
    if (withTls) {
      sock = tls.connect({ socket: raw, rejectUnauthorized: false });
      sock.on("error", fail);
      sock.on("secureConnect", hello);
    } else raw.on("connect", hello);
    readerOf(sock).bytes(4, 2_000).then((b) => {
      clearTimeout(timer);
      raw.destroy();
      if (b[0] === 0x20 && b[3] === 0) resolve();
      else reject(new Error(`unexpected answer ${[...b.subarray(0, 4)]}`));
    }, fail);
  });
}

async function httpServed(port: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, {
    signal: AbortSignal.timeout(2_000),
  });
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`GET /health: ${res.status}`);
}

/** Opens FLOOD sockets to `port`; resolves once each is connected or already closed. */
async function flood(port: number, opening?: Uint8Array): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  const settled: Promise<void>[] = [];
  for (let i = 0; i < FLOOD; i++) {
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => {});
    settled.push(
      new Promise<void>((r) => {
        s.once("connect", () => {
          if (opening) s.write(opening);
          r();
        });
        s.once("close", () => r());
      }),
    );
    sockets.push(s);
  }
  await Promise.all(settled);
  return sockets;
}

/** Floods each target in turn, checks the broker lives, then that the target serves again. */
async function exhaustEach(broker: Broker, pid: number, targets: Target[]): Promise<void> {
  for (const t of targets) {
    // Retried: a listener restart after the previous flood may drop a connection being
    // accepted at that instant (see src/transport/descriptor_watch.ts).
    await waitFor(() => t.serve().then(() => true, () => false), {
      what: `${t.name} to serve a client before its flood`,
      timeout: RECOVERY_TIMEOUT_MS,
      interval: 100,
    });
    const logsBefore = broker.logs().length;
    const sockets = await flood(t.port, t.opening);
    const open = sockets.filter((s) => !s.destroyed).length;
    assert.ok(alive(pid), `the broker died while ${t.name} was flooded:\n${broker.logs()}`);
    const gone = performance.now();
    for (const s of sockets) s.destroy();
    let attempts = 0;
    await waitFor(
      () => {
        attempts++;
        return t.serve().then(() => true, () => false);
      },
      { what: `${t.name} to serve a client again`, timeout: RECOVERY_TIMEOUT_MS, interval: 100 },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; logs:\n${broker.logs()}`);
    });
    const recovery = performance.now() - gone;
    assert.ok(alive(pid), `the broker died after the ${t.name} flood`);
    const events = broker.logs().slice(logsBefore).split("\n")
      .filter((l) => /shedding|restarting|out of file|available again|cannot accept/.test(l));
    for (const e of events) console.log(`  broker: ${e.replace(/^\S+ /, "")}`);
    console.log(
      `${t.name}: ${FLOOD} sockets opened (${open} still open at the peak) under a ` +
        `${FILE_LIMIT} open-file limit; served again ${recovery.toFixed(0)} ms after they ` +
        `closed (${attempts} attempts); broker peak RSS ${peakRssMb(pid).toFixed(1)} MB`,
    );
  }
  // Every listener still serves at the end, not only the one flooded last.
  for (const t of targets) {
    await waitFor(() => t.serve().then(() => true, () => false), {
      what: `${t.name} to serve a client after all floods`,
      timeout: RECOVERY_TIMEOUT_MS,
      interval: 100,
    });
  }
  const shed = broker.logs().match(/(\d+) shed so far/g)?.at(-1) ?? "none shed";
  console.log(`all listeners serve after the floods; ${shed}`);
}

Deno.test({
  name: "every listener survives running out of descriptors and accepts again afterwards",
  ignore: EXTERNAL, // starts its own brokers under a lowered limit
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        fileLimit: FILE_LIMIT,
        args: [
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.wss-port=0",
          "--mqttwk.broker.websocket-enabled=true",
          "--mqttwk.broker.websocket-port=0",
          "--mqttwk.broker.http-enabled=true",
          "--server.port=0",
        ],
      });
      defer(() => broker.stop());
      const pid = brokerPid(certs.dir);
      const [tcp, tlsPort, ws, wss, http] = await Promise.all(
        ["tcp", "tls", "ws", "wss", "http"].map((k) => listenerPort(broker, k)),
      );
      await exhaustEach(broker, pid, [
        { name: "tcp", port: tcp, serve: () => mqttServed(`mqtt://127.0.0.1:${tcp}`) },
        {
          name: "tls",
          port: tlsPort,
          opening: HALF_CLIENT_HELLO,
          serve: () => mqttServed(`mqtts://127.0.0.1:${tlsPort}`),
        },
        {
          name: "ws",
          port: ws,
          opening: enc.encode("GET /mqtt HTTP/1.1\r\nHost: x\r\n"),
          serve: () => mqttServed(`ws://127.0.0.1:${ws}/mqtt`),
        },
        {
          name: "wss",
          port: wss,
          opening: HALF_CLIENT_HELLO,
          serve: () => mqttServed(`wss://127.0.0.1:${wss}/mqtt`),
        },
        {
          name: "http",
          port: http,
          opening: enc.encode("GET /hea"),
          serve: () => httpServed(http),
        },
      ]);
    }),
});

Deno.test({
  name:
    "a TCP listener behind a PROXY header survives running out of descriptors and accepts again",
  ignore: EXTERNAL, // starts its own brokers under a lowered limit
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        fileLimit: FILE_LIMIT,
        args: [
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.wss-enabled=false",
          "--mqttwk.broker.proxy-protocol=tcp,tls",
        ],
      });
      defer(() => broker.stop());
      const pid = brokerPid(certs.dir);
      const tcp = await listenerPort(broker, "tcp");
      const halfHeader = enc.encode("PROXY TCP4 10.9.8.7 ");
      await exhaustEach(broker, pid, [
        {
          name: "tcp behind PROXY",
          port: tcp,
          opening: halfHeader,
          serve: () => proxiedServed(tcp, false),
        },
      ]);
    }),
});

Deno.test({
  name:
    "a TLS listener behind a PROXY header survives running out of descriptors and accepts again",
  ignore: EXTERNAL, // starts its own brokers under a lowered limit
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        fileLimit: FILE_LIMIT,
        args: [
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.wss-enabled=false",
          "--mqttwk.broker.proxy-protocol=tls",
        ],
      });
      defer(() => broker.stop());
      const pid = brokerPid(certs.dir);
      const tlsPort = await listenerPort(broker, "tls");
      const halfHeader = enc.encode("PROXY TCP4 10.9.8.7 ");
      await exhaustEach(broker, pid, [
        {
          name: "tls behind PROXY",
          port: tlsPort,
          opening: halfHeader,
          serve: () => proxiedServed(tlsPort, true),
        },
      ]);
    }),
});
