/**
 * What this node forwards to other nodes, coalesced per target node and event-loop turn: the
 * QoS 1/2 frames of a turn for one node go into one stream entry (one XADD), its QoS 0 frames
 * into one channel message (one PUBLISH), as a "batch" wire frame (a lone frame goes as itself).
 * One Redis command per node per turn instead of one per message: ioredis costs several
 * microseconds per command and Redis wakes each subscriber once per PUBLISH.
 *
 * Order: a node's frames leave in the order they were queued, each batch on the one command
 * connection after the previous one, so Redis stores (and the reader sees) them in that order —
 * the per-publisher order of docs/cluster.md. QoS 0 and QoS 1/2 were never ordered between each
 * other (channel and stream) and still are not.
 *
 * Durability: a QoS 1/2 frame's promise resolves once the XADD holding it was answered, so the
 * publisher's PUBACK/PUBREC still waits until its message is in the target's stream. All frames
 * of one entry share one promise (no promise per message).
 *
 * Bounded: a batch is sent as soon as it reaches MAX_FRAMES or MAX_BYTES, and whatever is left is
 * sent at the end of the turn, so the outbox never holds more than one turn's traffic.
 */
import { setImmediate } from "node:timers";
import type { Buffer } from "node:buffer";
import { encodeBatch } from "./wire.ts";

/** Most frames in one stream entry or channel message. */
export const MAX_FRAMES = 1024;
/** A batch is sent once its frames reach this many bytes (one larger frame goes alone). */
export const MAX_BYTES = 15 * 1024;

/** Where batches go: one stream entry (resolves once Redis has it) or one channel message. */
export interface OutboxTransport {
  stream(node: string, frame: Buffer | Uint8Array): Promise<unknown>;
  channel(node: string, frame: Buffer | Uint8Array): void;
}

/** Frames waiting for one destination (one node's stream or its channel). */
class Batch {
  frames: Uint8Array[] = [];
  bytes = 0;
  /** Stream batches: settles when the entry was written. */
  done: PromiseWithResolvers<void> | null = null;
}

interface NodeQueue {
  stream: Batch;
  channel: Batch;
}

/** Per-node batching of forwarded frames; see the file comment. */
export class Outbox {
  #queues = new Map<string, NodeQueue>();
  #scheduled = false;
  /** Batches sent and frames in them since start (diagnostics, tests). */
  batches = 0;
  frames = 0;

  constructor(private readonly transport: OutboxTransport) {}

  /** Queues a QoS 1/2 frame for `node`'s stream; resolves once the entry holding it is in Redis. */
  toStream(node: string, frame: Uint8Array): Promise<void> {
    const b = this.#queue(node).stream;
    const done = b.done ??= Promise.withResolvers<void>();
    this.#add(node, b, frame, true);
    return done.promise;
  }

  /** Queues a QoS 0 frame for `node`'s message channel (at most once: nothing waits for it). */
  toChannel(node: string, frame: Uint8Array): void {
    this.#add(node, this.#queue(node).channel, frame, false);
  }

  /** Sends everything queued now (also what the end of the turn would send). */
  flush(): void {
    this.#scheduled = false;
    for (const [node, q] of this.#queues) {
      if (q.stream.frames.length) this.#send(node, q.stream, true);
      if (q.channel.frames.length) this.#send(node, q.channel, false);
    }
    this.#queues.clear();
  }

  #queue(node: string): NodeQueue {
    let q = this.#queues.get(node);
    if (!q) this.#queues.set(node, q = { stream: new Batch(), channel: new Batch() });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    return q;
  }

  #add(node: string, b: Batch, frame: Uint8Array, stream: boolean): void {
    b.frames.push(frame);
    b.bytes += frame.byteLength;
    if (b.frames.length >= MAX_FRAMES || b.bytes >= MAX_BYTES) this.#send(node, b, stream);
  }

  /** Sends `b`'s frames as one command and empties it for the frames that follow. */
  #send(node: string, b: Batch, stream: boolean): void {
    const frames = b.frames;
    const done = b.done;
    b.frames = [];
    b.bytes = 0;
    b.done = null;
    this.batches++;
    this.frames += frames.length;
    const frame = frames.length === 1 ? frames[0] : encodeBatch(frames);
    if (!stream) return this.transport.channel(node, frame);
    this.transport.stream(node, frame).then(() => done?.resolve(), (e) => done?.reject(e));
  }
}
