/**
 * A Redis store commit in the making: the mutations coalesced since the last commit (Batch) and
 * the commands that write them, grouped by slot (one MULTI, or one fenced script, per group).
 */
import type { Buffer } from "node:buffer";
import type { RedisKeys } from "../redis/keys.ts";

/** Longest argument list of one command: large queues are written in several (Lua's unpack). */
const MAX_ARGS = 4000;

/** What one commit does to one session. */
export interface SessionOps {
  /** Delete every key of the session before applying the rest. */
  reset: boolean;
  /** The session ends deleted (reset and not saved again). */
  deleted: boolean;
  record?: Buffer;
  /** Expiry time of a disconnected session, null when connected or never expiring. */
  deadline?: number | null;
  /** TTL of the keys in ms, null for none. */
  ttlMs?: number | null;
  subs: Map<string, string | null>;
  out: Map<number, Buffer | null>;
  q2: Map<number, boolean>;
}

/** Mutations coalesced until the next commit. */
export class Batch {
  sessions = new Map<string, SessionOps>();
  retained = new Map<string, Buffer | null>();
  ops = 0;
  get empty(): boolean {
    return this.ops === 0;
  }
  of(id: string): SessionOps {
    let s = this.sessions.get(id);
    if (!s) {
      s = { reset: false, deleted: false, subs: new Map(), out: new Map(), q2: new Map() };
      this.sessions.set(id, s);
    }
    return s;
  }
}

/** Copies the remaining TTL of the record key to the session's other keys (or removes theirs). */
const SYNC_TTL = `
local t = redis.call('PTTL', KEYS[1])
if t == -2 then return 0 end
for i = 2, #KEYS do
  if t > 0 then redis.call('PEXPIRE', KEYS[i], t) else redis.call('PERSIST', KEYS[i]) end
end
return 1`;

/** One command: name, then arguments. */
export type Command = [string, ...unknown[]];

/** The commands writing `batches`, grouped by slot group ("g", or "s:" + client id). */
export function buildCommands(batches: Batch[], K: RedisKeys): Map<string, Command[]> {
  const groups = new Map<string, [string, ...unknown[]][]>();
  const group = (k: string) => {
    let g = groups.get(k);
    if (!g) groups.set(k, g = []);
    return g;
  };
  const G = "g";
  for (const b of batches) {
    for (const [id, ops] of b.sessions) {
      const keys = K.session(id);
      const [ks, ksub, kout, kq2, kexp] = keys;
      const cmds = group("s:" + id);
      if (ops.reset) cmds.push(["del", ks, ksub, kout, kq2, kexp]);
      if (ops.record) {
        cmds.push(["set", ks, ops.record]);
        if (ops.deadline != null) cmds.push(["set", kexp, String(ops.deadline)]);
        else cmds.push(["del", kexp]);
        if (ops.ttlMs != null) cmds.push(["pexpire", ks, ops.ttlMs]);
      }
      const hset: unknown[] = [];
      const hdel: string[] = [];
      for (const [f, v] of ops.subs) v === null ? hdel.push(f) : hset.push(f, v);
      pushChunked(cmds, "hdel", ksub, hdel);
      pushChunked(cmds, "hset", ksub, hset);
      const oset: unknown[] = [];
      const odel: string[] = [];
      for (const [seq, v] of ops.out) v === null ? odel.push(String(seq)) : oset.push(seq, v);
      pushChunked(cmds, "hdel", kout, odel);
      pushChunked(cmds, "hset", kout, oset);
      const qadd: number[] = [];
      const qdel: number[] = [];
      for (const [pid, on] of ops.q2) (on ? qadd : qdel).push(pid);
      pushChunked(cmds, "srem", kq2, qdel);
      pushChunked(cmds, "sadd", kq2, qadd);
      if (!ops.deleted || ops.record || ops.subs.size || ops.out.size || ops.q2.size) {
        cmds.push(["eval", SYNC_TTL, 5, ...keys]);
      }
      const g = group(G);
      if (ops.record) {
        g.push(["sadd", K.sessions, id]);
        if (ops.deadline != null) g.push(["zadd", K.expiry, ops.deadline, id]);
        else g.push(["zrem", K.expiry, id]);
      } else if (ops.deleted) {
        g.push(["srem", K.sessions, id]);
        g.push(["zrem", K.expiry, id]);
      }
    }
    if (b.retained.size) {
      const set: unknown[] = [];
      const del: string[] = [];
      for (const [topic, v] of b.retained) v === null ? del.push(topic) : set.push(topic, v);
      const g = group(G);
      if (del.length) g.push(["hdel", K.retained, ...del]);
      if (set.length) g.push(["hset", K.retained, ...set]);
    }
  }
  return groups;
}

/** `name key ...items`, split so no command has more than MAX_ARGS items. */
function pushChunked(
  cmds: [string, ...unknown[]][],
  name: string,
  key: string,
  items: unknown[],
): void {
  for (let i = 0; i < items.length; i += MAX_ARGS) {
    cmds.push([name, key, ...items.slice(i, i + MAX_ARGS)]);
  }
}
