/** The egress pipeline's producer, as a handle on the producer thread (producer_worker.ts). */
import type { Logger } from "../../log.ts";
import type { ProducerLink } from "./egress.ts";
import { packBatch } from "./batch_wire.ts";
import type { BridgeRecord } from "./records.ts";
import type { ProducerConfig } from "./kafka_producer.ts";

/** The producer's settings, as the producer thread is given them. */
export type WorkerConfig = ProducerConfig;

export type WorkerRequest =
  | { id: number; op: "init"; config: WorkerConfig }
  | { id: number; op: "connect" }
  /** `batch`: the records packed by batch_wire.ts, transferred (not copied) to the thread. */
  | { id: number; op: "send"; batch: ArrayBuffer }
  | { id: number; op: "disconnect" };

/** `batch`: a send's buffer, handed back for the next batch (no allocation per batch). */
export type WorkerReply =
  | { id: number; ok: true; batch?: ArrayBuffer }
  | { id: number; ok: false; message: string; permanent: boolean; batch?: ArrayBuffer };

/** Buffers kept for reuse; more than two or three are never out at once. */
const SPARE_BUFFERS = 4;

/** A send failure as reported by the worker; `permanent` = no retry can fix it. */
export class KafkaSendError extends Error {
  override name = "KafkaSendError";
  constructor(message: string, readonly permanent: boolean) {
    super(message);
  }
}

/** Owns the worker thread; `producer()` is the egress pipeline's createProducer. */
export class ProducerWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  readonly #spare: ArrayBuffer[] = [];
  #next = 1;
  #closed = false;

  constructor(config: WorkerConfig, log: Logger) {
    this.#worker = new Worker(new URL("./producer_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const r = e.data;
      if (r.batch && this.#spare.length < SPARE_BUFFERS) this.#spare.push(r.batch);
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (r.ok) p.resolve();
      else p.reject(new KafkaSendError(r.message, r.permanent));
    };
    this.#worker.onerror = (e) => {
      // A crashed worker must not leave the egress loop waiting forever.
      e.preventDefault();
      log.error(`kafka producer thread failed: ${e.message}`);
      this.#failAll(new Error(`kafka producer thread failed: ${e.message}`));
    };
    void this.#call({ id: 0, op: "init", config });
  }

  #call(req: WorkerRequest, transfer: Transferable[] = []): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("kafka producer thread closed"));
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#pending.set(req.id, { resolve, reject });
    this.#worker.postMessage(req, transfer);
    return promise;
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  producer(): ProducerLink {
    return {
      connect: () => this.#call({ id: this.#next++, op: "connect" }),
      send: (records: BridgeRecord[]) => {
        // One buffer per batch, handed over rather than structured-cloned record by record.
        const batch = packBatch(records, this.#spare.pop());
        return this.#call({ id: this.#next++, op: "send", batch }, [batch]);
      },
      disconnect: () => this.#call({ id: this.#next++, op: "disconnect" }),
    };
  }

  /** Disconnects the producer and ends the thread. */
  async close(): Promise<void> {
    if (this.#closed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#call({ id: this.#next++, op: "disconnect" }).catch(() => {}),
      new Promise((r) => timer = setTimeout(r, 2_000)),
    ]);
    clearTimeout(timer);
    this.#closed = true;
    this.#failAll(new Error("kafka producer thread closed"));
    this.#worker.terminate();
  }
}

export function isPermanentSendError(err: unknown): boolean {
  return err instanceof KafkaSendError && err.permanent;
}
