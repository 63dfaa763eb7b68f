/**
 * A session's queue read from Redis page by page (oldest first), so that resuming a session with
 * tens of thousands of queued messages neither waits for nor blocks the event loop with one
 * huge HGETALL and its decoding: the queue hash's field names (seqs, a few bytes each) are read
 * once and sorted, then the entries are fetched with HMGET, one page at a time.
 */
import type { Buffer } from "node:buffer";
import type { OutboundEntry, QueueRest } from "../broker/model.ts";
import type { RedisClient } from "../redis/conn.ts";
import { decodeEntry } from "./redis_codec.ts";

/** Entries per page: one HMGET of this many, decoded in a few milliseconds. */
export const QUEUE_PAGE = 1000;

/** Reads the entries of `seqs` from the queue hash `key`, in that order, skipping gone ones. */
export async function readEntries(
  redis: RedisClient,
  key: string,
  seqs: number[],
): Promise<OutboundEntry[]> {
  if (seqs.length === 0) return [];
  const values = await redis.hmgetBuffer(key, ...seqs.map(String)) as (Buffer | null)[];
  const out: OutboundEntry[] = [];
  for (const v of values) if (v) out.push(decodeEntry(v));
  return out;
}

/** The unread part of a stored queue (see QueueRest). */
export class StoredQueueRest implements QueueRest {
  #pos: number;

  constructor(
    /** The store's connection at the time of the read (it may be replaced on reconnect). */
    private readonly redis: () => RedisClient,
    private readonly key: string,
    private readonly seqs: number[],
    from: number,
  ) {
    this.#pos = from;
  }

  get remaining(): number {
    return this.seqs.length - this.#pos;
  }

  get lastSeq(): number {
    return this.seqs.length ? this.seqs[this.seqs.length - 1] : 0;
  }

  async next(): Promise<OutboundEntry[]> {
    const page = this.seqs.slice(this.#pos, this.#pos + QUEUE_PAGE);
    const entries = await readEntries(this.redis(), this.key, page);
    // Advanced only once read: a failed read is retried from the same place.
    this.#pos += page.length;
    return entries;
  }
}
