/**
 * What this node forwards to other nodes, coalesced per target node and event-loop turn: the
 * QoS 1/2 frames of a turn for one node go into one stream entry (one XADD), its QoS 0 frames
 * into one channel message (one PUBLISH), as a "batch" wire frame (a lone frame goes as itself).
 * One Redis command per node per turn instead of one per message: ioredis costs several
 * microseconds per command and Redis wakes each subscriber once per PUBLISH.
 *
 * Each frame is copied into its batch's buffer as it is queued (behind its length), and the
 * batch header is written in front when the batch leaves: no array of frames, no allocation per
 * frame and no second copy. The buffer starts at the size of the previous batch to that
 * destination, so a steady stream of batches does not grow one step by step.
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
import { Buffer } from "node:buffer";
import type { StoredMessage } from "../broker/model.ts";
import {
  BATCH_HEADER,
  encodeForwardInto,
  encodeWire,
  forwardBound,
  isBatch,
  writeBatchHeader,
} from "./wire.ts";
import { Out } from "./wire_fields.ts";

/** Most frames in one stream entry or channel message. */
export const MAX_FRAMES = 1024;
/**
 * A batch is sent once its frames reach this many bytes (one larger frame goes alone). Each XADD
 * or PUBLISH costs the sending node a socket write, Redis a command and the receiving node a
 * read, whatever its size, so fewer, larger ones save all three: with 15 KiB stream entries
 * instead, cross-node pairs at QoS 1 delivered 0.75x as much and Redis took a quarter more CPU.
 * Stream entries keep this size while a node is down, so `stream-max-len` entries hold up to
 * about that many times 60 KiB.
 */
export const MAX_BYTES = 60 * 1024;
/**
 * A message encoded straight into a batch gets a three-byte length in front (a varint that need
 * not be minimal: every reader takes continuation bytes as they come), written once its size is
 * known; messages that might need more go through encodeWire and a copy.
 */
const LENGTH3 = 1 << 21;
/** Smallest buffer a batch starts with. */
const MIN_BUFFER = 256;
/**
 * Buffers at least this large are reused once Redis answered the command that sent them: a
 * large ArrayBuffer costs microseconds to allocate and adds to V8's external memory, which makes
 * it collect garbage more often (smaller ones come from Buffer's shared pool).
 */
const REUSED = 4096;
/** Most spare buffers kept. */
const SPARES = 16;
/**
 * Bytes kept free in front of every frame the transport gets, and 2 after it (see
 * OutboxTransport): room for the command around it.
 */
export const FRAMING_ROOM = 256;
/** Where a batch's header starts in its buffer. */
const START = FRAMING_ROOM;

/**
 * Where batches go: one stream entry (resolves once Redis has it) or one channel message (may
 * return a promise that settles once Redis answered). The frame's buffer is reused once the
 * promise settled, never before. The FRAMING_ROOM bytes before the frame and the 2 after it are
 * the outbox's own and unused: the transport may write the command around the frame there
 * (redis/framed_command.ts) and send the frame without copying it.
 */
export interface OutboxTransport {
  stream(node: string, frame: Buffer | Uint8Array): Promise<unknown>;
  channel(node: string, frame: Buffer | Uint8Array): Promise<unknown> | void;
}

/** Frames waiting for one destination (one node's stream or its channel). */
class Batch {
  constructor(readonly limit: number) {}
  /** Header room, then each frame behind its length; null while empty. */
  buf: Buffer | null = null;
  pos = 0;
  count = 0;
  /** Where the first frame starts: a lone frame is sent as itself. */
  first = 0;
  /** Stream batches: settles when the entry was written. */
  done: PromiseWithResolvers<void> | null = null;
  /** Size the next buffer starts with: about that of the last batch sent. */
  hint = MIN_BUFFER;
}

interface NodeQueue {
  stream: Batch;
  channel: Batch;
  /** Queued to in the current turn (an idle node's queue is dropped at the end of a turn). */
  used: boolean;
}

/** Per-node batching of forwarded frames; see the file comment. */
export class Outbox {
  #queues = new Map<string, NodeQueue>();
  /** Large buffers whose commands Redis answered, for the next batches. */
  #spares: Buffer[] = [];
  #scheduled = false;
  /** Made once: an arrow in #queue would make V8 allocate a context on every call. */
  readonly #flushNow = () => this.flush();
  /** Batches sent and frames in them since start (diagnostics, tests). */
  batches = 0;
  frames = 0;

  constructor(private readonly transport: OutboxTransport) {}

  /**
   * Queues a QoS 1/2 frame for `node`'s stream; resolves once the entry holding it is in Redis.
   * The frame is copied at once: the caller may reuse it.
   */
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

  /**
   * toStream for the "publish" frame of `msg` (with `share`: "publish-shared"), encoded straight
   * into the batch: no frame of its own, no copy. `last` is that frame, for other nodes.
   */
  streamMessage(node: string, msg: StoredMessage, share?: string, hops = 0): Promise<void> {
    const b = this.#queue(node).stream;
    const done = b.done ??= Promise.withResolvers<void>();
    this.#encode(node, b, msg, share, hops, true);
    return done.promise;
  }

  /** toChannel for the frame of `msg`, as streamMessage. */
  channelMessage(node: string, msg: StoredMessage, share?: string, hops = 0): void {
    this.#encode(node, this.#queue(node).channel, msg, share, hops, false);
  }

  /**
   * The frame streamMessage or channelMessage encoded last, to queue for further nodes with
   * toStream/toChannel right away (a view into a batch, valid until the next outbox call).
   */
  get last(): Uint8Array {
    return this.#last.subarray(this.#lastStart, this.#lastEnd);
  }

  /** Sends everything queued now (also what the end of the turn would send). */
  flush(): void {
    this.#scheduled = false;
    for (const [node, q] of this.#queues) {
      if (q.stream.count) this.#send(node, q.stream, true);
      if (q.channel.count) this.#send(node, q.channel, false);
      if (!q.used) this.#queues.delete(node);
      q.used = false;
    }
  }

  #queue(node: string): NodeQueue {
    let q = this.#queues.get(node);
    if (!q) {
      q = { stream: new Batch(MAX_BYTES), channel: new Batch(MAX_BYTES), used: true };
      this.#queues.set(node, q);
    }
    q.used = true;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushNow);
    }
    return q;
  }

  /** Where `last` is: in this buffer, from #lastStart to #lastEnd (no view made unless asked). */
  #last: Uint8Array = new Uint8Array(0);
  #lastStart = 0;
  #lastEnd = 0;
  readonly #out = new Out();

  #encode(
    node: string,
    b: Batch,
    msg: StoredMessage,
    share: string | undefined,
    hops: number,
    stream: boolean,
  ): void {
    const bound = forwardBound(msg, share);
    if (bound >= LENGTH3) {
      const frame = encodeWire(
        share === undefined
          ? { kind: "publish", msg }
          : { kind: "publish-shared", share, hops, msg },
      );
      this.#last = frame;
      this.#lastStart = 0;
      this.#lastEnd = frame.byteLength;
      return this.#add(node, b, frame, stream);
    }
    const buf = this.#room(b, 3 + bound);
    const at = b.pos;
    const o = this.#out;
    o.buf = buf;
    o.pos = at + 3;
    encodeForwardInto(o, msg, share, hops);
    o.buf = null;
    const len = o.pos - at - 3;
    buf[at] = (len & 0x7f) | 0x80;
    buf[at + 1] = ((len >> 7) & 0x7f) | 0x80;
    buf[at + 2] = len >> 14;
    if (b.count === 0) b.first = at + 3;
    this.#last = buf;
    this.#lastStart = at + 3;
    this.#lastEnd = o.pos;
    b.pos = o.pos;
    b.count++;
    if (b.count >= MAX_FRAMES || b.pos - START - BATCH_HEADER >= b.limit) {
      this.#send(node, b, stream);
    }
  }

  /** `b`'s buffer, with room for `bytes` more after the header and what it holds. */
  #room(b: Batch, bytes: number): Buffer {
    const need = (b.buf === null ? START + BATCH_HEADER : b.pos) + bytes + 2;
    let buf = b.buf;
    if (buf === null) {
      buf = b.buf = this.#allocate(Math.max(b.hint, need));
      b.pos = START + BATCH_HEADER;
    } else if (need > buf.byteLength) {
      const grown = this.#allocate(Math.max(need, buf.byteLength * 2));
      grown.set(buf.subarray(0, b.pos));
      this.#spare(buf); // never sent
      buf = b.buf = grown;
    }
    return buf;
  }

  #add(node: string, b: Batch, frame: Uint8Array, stream: boolean): void {
    if (isBatch(frame)) throw new Error("cluster: a batch inside a batch");
    const len = frame.byteLength;
    // The frame, its length (a varint of at most 5 bytes here) and, first, the header.
    const buf = this.#room(b, 5 + len);
    let p = b.pos;
    let n = len;
    while (n >= 0x80) {
      buf[p++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    buf[p++] = n;
    if (b.count === 0) b.first = p;
    buf.set(frame, p);
    b.pos = p + len;
    b.count++;
    if (b.count >= MAX_FRAMES || b.pos - START - BATCH_HEADER >= b.limit) {
      this.#send(node, b, stream);
    }
  }

  /** Keeps `buf` for a later batch (large ones only; a few at most). */
  #spare(buf: Buffer): void {
    if (buf.byteLength >= REUSED && this.#spares.length < SPARES) this.#spares.push(buf);
  }

  /**
   * A buffer of at least `size` bytes: a spare one if it is large enough. Large ones are made in
   * powers of two, so that a spare fits the next batch of about the same size: sized to each
   * batch, half of them missed and were made anew.
   */
  #allocate(size: number): Buffer {
    if (size >= REUSED) {
      size = 2 ** Math.ceil(Math.log2(size));
      const spares = this.#spares;
      for (let i = spares.length - 1; i >= 0; i--) {
        if (spares[i].byteLength >= size) {
          const b = spares[i];
          spares[i] = spares[spares.length - 1];
          spares.pop();
          return b;
        }
      }
    }
    return Buffer.allocUnsafe(size);
  }

  /** Sends `b`'s frames as one command and empties it for the frames that follow. */
  #send(node: string, b: Batch, stream: boolean): void {
    const buf = b.buf!;
    const count = b.count;
    const done = b.done;
    let frame: Buffer;
    if (count === 1) frame = buf.subarray(b.first, b.pos);
    else {
      writeBatchHeader(buf.subarray(START), count);
      frame = buf.subarray(START, b.pos);
    }
    // Capped so that a full batch's buffer stays within 64 KiB (allocated in powers of two).
    b.hint = Math.min(Math.max(b.pos + 64, MIN_BUFFER), START + b.limit + 512);
    b.buf = null;
    b.pos = 0;
    b.count = 0;
    b.done = null;
    this.batches++;
    this.frames += count;
    const reuse = buf.byteLength >= REUSED ? () => this.#spare(buf) : null;
    if (!stream) {
      const sent = this.transport.channel(node, frame);
      if (reuse) sent?.then(reuse, reuse);
      return;
    }
    this.transport.stream(node, frame).then(() => {
      reuse?.();
      done?.resolve();
    }, (e) => {
      reuse?.();
      done?.reject(e);
    });
  }
}
