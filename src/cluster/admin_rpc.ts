/**
 * Admin requests across the cluster: a node asks every live node (itself included) a question
 * of the admin API (list your clients, kick this client, ...) and gathers the answers. Requests
 * go out on one pub/sub channel, each node answers on the asking node's reply channel; the
 * gathering ends when every node that was live when it started has answered, or after a timeout
 * (with the answers that came). Its own Redis connections, so a slow gathering never holds up
 * message forwarding. Requests and answers are JSON; the answering is the caller's (`answer`).
 *
 * Channels: P ch:admin:req (requests), P ch:admin:reply:<node> (answers to that node).
 */
import type { Buffer } from "node:buffer";
import type { Logger } from "../log.ts";
import {
  createRedis,
  ignoreErrors,
  type RedisClient,
  type RedisConnOptions,
} from "../redis/conn.ts";
import { DEFAULT_PREFIX, RedisKeys } from "../redis/keys.ts";

/** One node's answer. */
export interface NodeAnswer {
  node: string;
  answer: unknown;
}

/** Requests in flight at most; more are refused at once. */
export const MAX_PENDING = 256;

interface Pending {
  want: Set<string>;
  got: NodeAnswer[];
  done: (answers: NodeAnswer[]) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Asks every live node and gathers their answers. */
export class AdminRpc {
  readonly #opts: RedisConnOptions;
  readonly #keys: RedisKeys;
  readonly #me: string;
  readonly #answer: (req: unknown) => unknown;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #cmd: RedisClient | null = null;
  #sub: RedisClient | null = null;
  readonly #pending = new Map<string, Pending>();
  #seq = 0;

  constructor(
    opts: RedisConnOptions & { keyPrefix?: string },
    me: string,
    answer: (req: unknown) => unknown,
    log: Logger,
    timeoutMs = 2000,
  ) {
    this.#opts = opts;
    this.#keys = new RedisKeys(opts.keyPrefix ?? DEFAULT_PREFIX);
    this.#me = me;
    this.#answer = answer;
    this.#log = log;
    this.#timeoutMs = timeoutMs;
  }

  /** Connects and listens for requests and answers. */
  async start(): Promise<void> {
    const cmd = this.#cmd = createRedis(this.#opts, { name: `mqttwk-admin-${this.#me}` });
    const sub = this.#sub = createRedis(this.#opts, {
      name: `mqttwk-admin-sub-${this.#me}`,
      autoPipelining: false,
    });
    ignoreErrors(cmd);
    ignoreErrors(sub);
    await Promise.all([cmd.connect(), sub.connect()]);
    sub.on("messageBuffer", (ch: Buffer, data: Buffer) => this.#onMessage(String(ch), data));
    await sub.subscribe(
      this.#keys.channel("admin:req"),
      this.#keys.channel(`admin:reply:${this.#me}`),
    );
  }

  /** Answers pending gatherings with what they have and closes the connections. */
  async stop(): Promise<void> {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.done(p.got);
    }
    this.#pending.clear();
    const conns = [this.#sub, this.#cmd];
    this.#sub = this.#cmd = null;
    await Promise.all(conns.map((c) => c?.quit().catch(() => c.disconnect())));
  }

  /** Node ids that are registered and have a live heartbeat. */
  async liveNodes(): Promise<string[]> {
    const cmd = this.#cmd;
    if (!cmd) return [this.#me];
    const nodes: string[] = await cmd.smembers(this.#keys.global("nodes"));
    const alive = await Promise.all(
      nodes.map((n) => cmd.exists(this.#keys.global(`alive:${n}`))),
    );
    const live = nodes.filter((_, i) => alive[i] === 1);
    if (!live.includes(this.#me)) live.push(this.#me);
    return live;
  }

  /**
   * Asks every live node `req`; resolves with the answers (this node's first) once all have
   * answered or the timeout passed (a node that did not answer then has a null answer).
   */
  async gather(req: unknown): Promise<NodeAnswer[]> {
    const mine: NodeAnswer = { node: this.#me, answer: await this.#answer(req) };
    const cmd = this.#cmd;
    if (!cmd) return [mine];
    if (this.#pending.size >= MAX_PENDING) throw new Error("too many cluster requests in flight");
    let others: string[];
    try {
      others = (await this.liveNodes()).filter((n) => n !== this.#me);
    } catch {
      // Redis away: this node answers for itself (the status shows the cluster degraded).
      return [mine];
    }
    if (others.length === 0) return [mine];
    const id = `${this.#me}:${++this.#seq}`;
    const answers = new Promise<NodeAnswer[]>((resolve) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(id);
        this.#pending.delete(id);
        if (p && p.want.size) {
          this.#log.warn(
            `cluster: admin request ${id}: no answer from ${[...p.want].join(", ")} within ` +
              `${this.#timeoutMs} ms; answering without them`,
          );
        }
        // A node that did not answer is listed with a null answer, so a status shows it.
        resolve([
          ...(p?.got ?? []),
          ...[...(p?.want ?? [])].map((node) => ({ node, answer: null })),
        ]);
      }, this.#timeoutMs);
      this.#pending.set(id, { want: new Set(others), got: [], done: resolve, timer });
    });
    await cmd.publish(
      this.#keys.channel("admin:req"),
      JSON.stringify({ id, from: this.#me, req }),
    ).catch(() => {});
    return [mine, ...(await answers)];
  }

  #onMessage(channel: string, data: Buffer): void {
    let m: { id?: string; from?: string; node?: string; req?: unknown; answer?: unknown };
    try {
      m = JSON.parse(String(data));
    } catch {
      return;
    }
    if (channel === this.#keys.channel("admin:req")) {
      if (m.from === this.#me || typeof m.from !== "string") return;
      this.#reply(m.id!, m.from, m.req);
      return;
    }
    const p = this.#pending.get(m.id ?? "");
    if (!p || typeof m.node !== "string" || !p.want.delete(m.node)) return;
    p.got.push({ node: m.node, answer: m.answer });
    if (p.want.size === 0) {
      clearTimeout(p.timer);
      this.#pending.delete(m.id!);
      p.done(p.got);
    }
  }

  async #reply(id: string, to: string, req: unknown): Promise<void> {
    let answer: unknown;
    try {
      answer = await this.#answer(req);
    } catch (e) {
      this.#log.warn(`cluster: admin request ${id} failed here: ${(e as Error).message}`);
      answer = null;
    }
    await this.#cmd?.publish(
      this.#keys.channel(`admin:reply:${to}`),
      JSON.stringify({ id, node: this.#me, answer }),
    ).catch(() => {});
  }
}
