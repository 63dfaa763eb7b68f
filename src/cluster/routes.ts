/**
 * Route table replication: which nodes have subscribers for which filters.
 *
 * Each node keeps `P {g}:routes:<node>` (its filters) and announces every change on `P ch:routes`;
 * every node holds the whole cluster's table in a topic trie, so a message goes only to nodes
 * with a matching filter. Full reloads (on (re)connect and periodically) race with live
 * announcements: a change announced while a reload reads the tables is newer than what it read,
 * so the reload keeps it.
 *
 * A shared subscription's route is its whole filter (`$share/g/f`): the node has members of that
 * group. Such routes stay out of the trie (a message is not copied to every node with members,
 * the core picks one) and are handed to the core instead (ClusterHost.sharedRouteChanged).
 */
import { isShared } from "../broker/shared_groups.ts";
import { TopicTree } from "../broker/topic_tree.ts";
import type { LinkContext } from "./context.ts";
import { encodeWire, type WireMessage } from "./wire.ts";

/** Most topics whose targets are remembered (see RouteTable.targets). */
const TARGETS_CACHED = 10_000;

/** Route changes announced while a snapshot was read: "node\nfilter" -> announced (true). */
type LiveChanges = Map<string, boolean>;

/** This node's view of every other node's routes, and the announcements of its own. */
export class RouteTable {
  #trie = new TopicTree<true>();
  /** targets() per topic since the trie last changed. */
  #targets = new Map<string, string[] | null>();
  #routes = new Map<string, Set<string>>();
  #ops = new Set<Promise<unknown>>();
  #reloads = new Set<LiveChanges>();

  constructor(private readonly ctx: LinkContext) {}

  /** Nodes this node currently forwards to for `topic`. */
  routesFor(topic: string): string[] {
    const out = new Set<string>();
    this.#trie.match(topic, (n) => out.add(n));
    return [...out];
  }

  /**
   * Other nodes with a filter matching `topic`, or null for none (the common local case). The
   * answer is remembered per topic until the table changes (a trie walk per forwarded message
   * was a tenth of a publishing node's CPU); callers must not change the array.
   */
  targets(topic: string): string[] | null {
    const known = this.#targets.get(topic);
    if (known !== undefined) return known;
    const targets = this.#match(topic);
    // Bounded: topics are the clients' choice; forgetting all is cheap and rare.
    if (this.#targets.size >= TARGETS_CACHED) this.#targets.clear();
    this.#targets.set(topic, targets);
    return targets;
  }

  /**
   * Other nodes with a filter matching `topic`. Apart from targets(): its closure would make V8
   * allocate a context on every call, also for the cached answers.
   */
  #match(topic: string): string[] | null {
    const me = this.ctx.me;
    let targets: string[] | null = null;
    this.#trie.match(topic, (node) => {
      if (node === me) return;
      if (!targets) targets = [node];
      else if (!targets.includes(node)) targets.push(node);
    });
    return targets;
  }

  /** Known remote nodes with their filters. */
  table(): Map<string, string[]> {
    return new Map([...this.#routes].map(([n, s]) => [n, [...s]]));
  }

  /** Nodes with at least one route. */
  nodes(): string[] {
    return [...this.#routes.keys()];
  }

  /** A first local subscriber to `filter`; resolves once the other nodes were told. */
  added(filter: string): Promise<void> {
    return this.#op(async (cmd) => {
      await cmd.sadd(this.ctx.g(`routes:${this.ctx.me}`), filter);
      await cmd.publish(this.#channel, this.#wire("route-added", filter));
    });
  }

  /** The last local subscriber to `filter` left. */
  removed(filter: string): Promise<void> {
    return this.#op(async (cmd) => {
      await cmd.srem(this.ctx.g(`routes:${this.ctx.me}`), filter);
      await cmd.publish(this.#channel, this.#wire("route-removed", filter));
    });
  }

  /** Resolves once every announcement issued so far is done. */
  async settled(): Promise<void> {
    await Promise.all(this.#ops);
  }

  /**
   * Replaces this node's table in Redis with `filters` (the live subscriptions) and tells the
   * others to re-read it: on joining (an earlier run's routes are stale) and after an outage.
   */
  async announceAll(filters: Iterable<string>): Promise<void> {
    const { cmd, me } = this.ctx;
    const key = this.ctx.g(`routes:${me}`);
    const local = [...filters];
    const m = cmd.multi().del(key);
    if (local.length) m.sadd(key, ...local);
    await m.exec();
    await cmd.publish(this.#channel, encodeWire({ kind: "routes-reset", node: me }));
  }

  /** Applies another node's announcement. */
  onWire(m: WireMessage): void {
    if (m.kind === "route-added" && m.node !== this.ctx.me) this.#add(m.node, m.filter);
    else if (m.kind === "route-removed" && m.node !== this.ctx.me) this.#remove(m.node, m.filter);
    else if (m.kind === "routes-reset" && m.node !== this.ctx.me) {
      this.#reload(m.node).catch(() => {});
    }
  }

  /** Forgets the routes of `node` (taken over, or no longer a member). */
  drop(node: string): void {
    this.#set(node, []);
  }

  /** Reloads every member's table from Redis. */
  async reload(): Promise<void> {
    const { cmd, me } = this.ctx;
    const [[nodes, tables], live] = await this.#read(async () => {
      const nodes = (await cmd.smembers(this.ctx.g("nodes"))).filter((n) => n !== me);
      return [nodes, await Promise.all(nodes.map((n) => cmd.smembers(this.ctx.g(`routes:${n}`))))];
    });
    for (const n of this.nodes()) if (!nodes.includes(n)) this.#set(n, [], live);
    nodes.forEach((n, i) => this.#set(n, tables[i], live));
  }

  get #channel(): string {
    return this.ctx.keys.channel("routes");
  }

  #wire(kind: "route-added" | "route-removed", filter: string) {
    return encodeWire({ kind, node: this.ctx.me, filter });
  }

  #op(fn: (cmd: LinkContext["cmd"]) => Promise<void>): Promise<void> {
    if (this.ctx.stopped) return Promise.resolve();
    // Never rejects: after an outage the whole set is re-announced anyway.
    const p = fn(this.ctx.cmd).catch(() => {});
    this.#ops.add(p);
    p.finally(() => this.#ops.delete(p));
    return p;
  }

  async #reload(node: string): Promise<void> {
    const [filters, live] = await this.#read(() =>
      this.ctx.cmd.smembers(this.ctx.g(`routes:${node}`))
    );
    this.#set(node, filters, live);
  }

  /** Reads route snapshots with `read`, noting the live route changes meanwhile. */
  async #read<T>(read: () => Promise<T>): Promise<[T, LiveChanges]> {
    const live: LiveChanges = new Map();
    this.#reloads.add(live);
    try {
      return [await read(), live];
    } finally {
      this.#reloads.delete(live);
    }
  }

  /** Replaces what `node` routes; `live` changes are newer than `filters` and win over it. */
  #set(node: string, filters: Iterable<string>, live?: LiveChanges): void {
    const old = this.#routes.get(node);
    const set = new Set(filters);
    if (live) {
      const prefix = `${node}\n`;
      for (const [key, present] of live) {
        if (!key.startsWith(prefix)) continue;
        const f = key.slice(prefix.length);
        if (present) set.add(f);
        else set.delete(f);
      }
    }
    this.#targets.clear();
    if (old) {
      for (const f of old) {
        if (!isShared(f)) this.#trie.remove(f, node);
        else if (!set.has(f)) this.ctx.host.sharedRouteChanged(f, node, false);
      }
    }
    if (set.size === 0) this.#routes.delete(node);
    else this.#routes.set(node, set);
    for (const f of set) {
      if (isShared(f)) this.ctx.host.sharedRouteChanged(f, node, true);
      else this.#trie.add(f, node, true);
    }
  }

  #add(node: string, filter: string): void {
    for (const live of this.#reloads) live.set(`${node}\n${filter}`, true);
    this.#targets.clear();
    let set = this.#routes.get(node);
    if (!set) this.#routes.set(node, set = new Set());
    set.add(filter);
    if (isShared(filter)) this.ctx.host.sharedRouteChanged(filter, node, true);
    else this.#trie.add(filter, node, true);
  }

  #remove(node: string, filter: string): void {
    for (const live of this.#reloads) live.set(`${node}\n${filter}`, false);
    this.#targets.clear();
    const set = this.#routes.get(node);
    if (!set?.delete(filter)) return;
    if (set.size === 0) this.#routes.delete(node);
    if (isShared(filter)) this.ctx.host.sharedRouteChanged(filter, node, false);
    else this.#trie.remove(filter, node);
  }
}
