/**
 * Fencing: a cluster node holds its sessions under a lease whose fencing token is an epoch
 * (`P {g}:epoch:<node>`, an integer). Taking a node over increments its epoch, so every
 * state-changing write a frozen node sends afterwards is refused by Redis itself: the write runs
 * inside a Lua script that first compares the stored epoch with the writer's (FENCED_APPLY), or
 * the script's own check (the cluster link's holder and heartbeat scripts).
 *
 * The store and the cluster link share one Fence: the link sets the epoch when it joins and the
 * local deadline on every heartbeat; the store waits on `valid()` before each commit, which is
 * the barrier every acknowledgement waits behind.
 */
import type { Buffer } from "node:buffer";

/** The error text a fenced script answers with; see isFenced. */
export const FENCED = "FENCED";

/** Whether `e` is a write refused because the writer's epoch is stale. */
export function isFenced(e: unknown): boolean {
  return String((e as Error)?.message ?? e).includes(FENCED);
}

/**
 * Lua prologue of a fenced script: KEYS[1] is the epoch key, ARGV[1] the writer's epoch.
 * Scripts built with `fenced()` have their own KEYS/ARGV shifted by one.
 */
const CHECK = `
local epoch = redis.call('GET', KEYS[1])
if epoch ~= ARGV[1] then
  return redis.error_reply('${FENCED} epoch of this node is ' .. tostring(epoch) ..
    ', the writer holds ' .. ARGV[1])
end
`;

/**
 * Wraps a script body so it runs only under the current epoch. The body sees its own keys as
 * `KEYS[k + 1]` and its arguments as `ARGV[a + 1]` (index 1 is the epoch key and epoch).
 */
export function fenced(body: string): string {
  return CHECK + body;
}

/**
 * Applies a list of commands under the epoch: ARGV after the epoch is a sequence of
 * `n, name, arg1, ..., arg(n-1)`. `synctl k1..k5` copies the TTL of k1 to the others (see the
 * store). Standalone Redis only: the keys are not declared, which a Redis Cluster refuses.
 */
export const FENCED_APPLY = fenced(`
local i = 2
local n = #ARGV
while i <= n do
  local c = tonumber(ARGV[i])
  local args = {}
  for j = 1, c do args[j] = ARGV[i + j] end
  i = i + c + 1
  if args[1] == 'synctl' then
    local t = redis.call('PTTL', args[2])
    if t ~= -2 then
      for k = 3, #args do
        if t > 0 then redis.call('PEXPIRE', args[k], t) else redis.call('PERSIST', args[k]) end
      end
    end
  else
    redis.call(unpack(args))
  end
end
return 1`);

/** Flattens commands into FENCED_APPLY's argument list (after the epoch). */
export function applyArgs(cmds: [string, ...unknown[]][]): (string | number | Buffer)[] {
  const out: (string | number | Buffer)[] = [];
  for (const c of cmds) {
    out.push(c.length);
    for (const a of c) out.push(a as string | number | Buffer);
  }
  return out;
}

/** A writer's view of its lease: the epoch to present, and whether it is still valid. */
export interface Fence {
  /** `P {g}:epoch:<node>`. */
  readonly key: string;
  /** The epoch this node holds ("0" before it joined). */
  readonly epoch: string;
  /**
   * Resolves with the epoch once the lease is valid by the local monotonic clock (at once while
   * it is, after a renewal otherwise); rejects when the node learned it was fenced.
   */
  valid(): Promise<string> | string;
  /** A write was refused with FENCED (the writer learns it was taken over). */
  refused?(why: string): void;
}
