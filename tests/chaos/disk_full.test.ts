/**
 * Chaos: the data directory's disk fills up under load and is freed again (issue 17, item 4).
 * The data directory is a small tmpfs mounted for the test (root is needed: mount -t tmpfs);
 * a ballast file eats most of it, so the broker's own store fills the rest.
 *
 * While the disk is full: nothing acknowledged is lost, re-sent PUBLISHes are not queued again
 * (QoS 2 exactly once; QoS 1 duplicates only for the few in flight), /health is 503 with the
 * reason, new persistent sessions are refused, a new clean subscriber still gets its retained
 * message. Once space is freed, acknowledgements resume without a restart.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import mqtt from "mqtt";
import { InvariantChecker } from "./invariants.ts";
import { ChaosPublisher, ChaosSubscriber, drain } from "./driver.ts";
import { ChaosNode } from "./node.ts";
import { tempDir } from "./config.ts";
import { waitFor } from "../helpers/wait.ts";

const MOUNT_MIB = 6;

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Fills the file system of `dir` with a ballast file until about `leaveBytes` are free. */
function ballast(dir: string, leaveBytes: number): string {
  const path = join(dir, "ballast");
  const f = Deno.openSync(path, { write: true, create: true });
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const free = Deno.statSync(dir) && freeOf(dir);
      if (free <= leaveBytes + chunk.byteLength) break;
      f.writeSync(chunk);
    }
  } finally {
    f.close();
  }
  return path;
}

/** Fills the file system of `dir` to the last byte (tmpfs hands out whole pages). */
function fillUp(dir: string): string {
  const path = join(dir, "ballast-full");
  const f = Deno.openSync(path, { write: true, create: true });
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      const chunk = new Uint8Array(size);
      try {
        for (;;) f.writeSync(chunk);
      } catch {
        // ENOSPC: on to smaller writes
      }
    }
  } finally {
    f.close();
  }
  return path;
}

function freeOf(dir: string): number {
  const out = new Deno.Command("df", { args: ["-B1", "--output=avail", dir] }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim().split("\n").pop());
}

/** Connects a client; resolves with its CONNACK return code (0 = accepted). */
function connackCode(port: number, opts: mqtt.IClientOptions): Promise<number> {
  return new Promise((resolve) => {
    const c = mqtt.connect({ host: "127.0.0.1", port, reconnectPeriod: 0, ...opts });
    c.on("connect", () => {
      c.end(true);
      resolve(0);
    });
    c.on("error", (e) => {
      c.end(true);
      resolve((e as { code?: number }).code ?? -1);
    });
  });
}

Deno.test({
  name: "a full disk refuses new work instead of queueing resends, and recovers when freed",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = tempDir("diskfull");
    await sh("mount", "-t", "tmpfs", "-o", `size=${MOUNT_MIB}m`, "tmpfs", dir);
    const data = join(dir, "data");
    const node = new ChaosNode([
      `--data-dir=${data}`,
      "--mqttwk.broker.disk-free-warn-bytes=2MiB",
      "--mqttwk.broker.max-queued-messages=100000",
    ]);
    const q1 = new InvariantChecker("disk full and freed, QoS 1");
    const q2 = new InvariantChecker("disk full and freed, QoS 2");
    try {
      await node.start();
      // A retained message a new subscriber must get while the disk is full.
      const setter = await mqtt.connectAsync({ host: "127.0.0.1", port: node.port });
      await setter.publishAsync("retained/x", "kept", { qos: 1, retain: true });
      await setter.endAsync();
      // An offline persistent session whose queue grows until the disk is full.
      const hoard = await mqtt.connectAsync({
        host: "127.0.0.1",
        port: node.port,
        clientId: "hoarder",
        clean: false,
      });
      await hoard.subscribeAsync("chaos/#", { qos: 1 });
      await hoard.endAsync();
      const ballastFile = ballast(dir, 1536 * 1024);

      const sub1 = new ChaosSubscriber("full-sub-q1", node, q1, 1, 4, [
        "chaos/full-q1",
        "chaos/full-q1v5",
      ]);
      const sub2 = new ChaosSubscriber("full-sub-q2", node, q2, 2, 4, "chaos/full-q2");
      await Promise.all([sub1.ready(), sub2.ready()]);
      const pubs = [
        new ChaosPublisher("full-q1", node, q1, 1, 20, Infinity, 4, 1024),
        new ChaosPublisher("full-q2", node, q2, 2, 20, Infinity, 4, 1024),
        new ChaosPublisher("full-q1v5", node, q1, 1, 20, Infinity, 5, 1024),
      ];
      // Full: /health says so, with the reason.
      const health = await waitFor(async () => {
        const h = await node.http("/health").catch(() => null);
        return h && h.status === 503 ? h : null;
      }, { what: "/health to report the full disk", timeout: 60_000, detail: () => node.logs() });
      console.log(`health while full: ${health.body}`);
      assert.match(health.body, /"store"/);
      assert.match(health.body, /full/);
      // The free-space warning (polled every 5 s) names the threshold key.
      await waitFor(() => /only .* MiB free .*disk-free-warn-bytes/.test(node.logs()), {
        what: "the free-space warning",
        timeout: 15_000,
      });
      const metrics = await node.http("/metrics");
      assert.match(metrics.body, /mqttwk_store_free_bytes \d+/);
      // Acknowledgements stop; resends do not multiply (checked in the tallies below).
      const ackedWhileFull = q1.ackedCount + q2.ackedCount;
      // New persistent sessions are refused: 3.1.1 0x03, 5.0 0x97.
      assert.equal(await connackCode(node.port, { clientId: "newp4", clean: false }), 3);
      assert.equal(
        await connackCode(node.port, {
          clientId: "newp5",
          clean: false,
          protocolVersion: 5,
          properties: { sessionExpiryInterval: 60 },
        }),
        0x97,
      );
      // A new clean subscriber gets its retained message.
      const fresh = await mqtt.connectAsync({ host: "127.0.0.1", port: node.port });
      const got = new Promise<string>((r) => fresh.on("message", (_t, p) => r(p.toString())));
      await fresh.subscribeAsync("retained/#", { qos: 1 });
      assert.equal(await got, "kept");
      await fresh.endAsync();
      // Keep it full a while: publishers resend, the store retries.
      await new Promise((r) => setTimeout(r, 3000));
      const stuck = q1.ackedCount + q2.ackedCount - ackedWhileFull;

      // Freed: acknowledgements resume by themselves.
      Deno.removeSync(ballastFile);
      await waitFor(async () => (await node.http("/health")).status === 200, {
        what: "/health to recover",
        timeout: 60_000,
        detail: () => node.logs().slice(-3000),
      });
      const resumedFrom = q1.ackedCount + q2.ackedCount;
      await waitFor(() => q1.ackedCount + q2.ackedCount > resumedFrom + 100, {
        what: "acknowledgements to resume",
        timeout: 60_000,
      });
      await drain(pubs, q1, 60_000);
      await drain(pubs, q2, 60_000);
      console.log(`acked while full (the batch in flight when it filled): ${stuck}`);
      for (const p of pubs) await p.end();
      await sub1.end();
      await sub2.end();
      const t1 = q1.check({ duplicatesAllowed: true });
      q2.check({ duplicatesAllowed: false });
      // At least once, but no amplification: at most the in-flight windows again.
      assert.ok(t1.duplicated <= 2 * 20 * 3, `QoS 1 duplicates ${t1.duplicated}`);

      // A start on a full disk says so, and does not tell to move the file aside. The killed
      // node left a write-ahead log that opening must fold into the file, which needs space.
      await node.kill("SIGKILL");
      const walBytes = Deno.statSync(join(data, "mqttwk.db-wal")).size;
      const again = fillUp(dir);
      let startError = "";
      try {
        await node.start();
      } catch (e) {
        startError = (e as Error).message;
      }
      console.log(`start on a full disk (write-ahead log ${walBytes} bytes): ${startError}`);
      assert.match(startError, /disk \(or quota\) holding it is full/);
      assert.match(startError, /do NOT move it aside/);
      assert.doesNotMatch(startError, /move \S+ .*aside to start/);
      Deno.removeSync(again);
      // With space back it starts on the same file, nothing lost to the refusal.
      await node.start();
    } finally {
      await node.stop();
      await sh("umount", dir).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
