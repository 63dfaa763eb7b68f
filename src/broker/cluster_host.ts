/** What the cluster link may ask of this node (the ClusterHost port), answered by the core. */
import type { Logger } from "../log.ts";
import type { Core } from "./core.ts";
import type { LoadedSession, StoredMessage } from "./model.ts";
import type { ClusterHost, KeptWill } from "./ports/cluster.ts";
import { backlogTurn } from "./session.ts";
import { VolatileDeliveries } from "./volatile.ts";

export class CoreClusterHost implements ClusterHost {
  readonly #core: Core;

  constructor(core: Core) {
    this.#core = core;
  }

  get nodeId(): string {
    return this.#core.options.nodeId;
  }

  get log(): Logger {
    return this.#core.log;
  }

  deliverFromPeer(msg: StoredMessage, share?: string, hops = 0): void | Promise<void> {
    if (share !== undefined) return this.#core.shared.fromPeer(msg, share, hops);
    this.#core.router.route(msg);
  }

  deliverTo(msg: StoredMessage, clientIds: readonly string[]): void {
    this.#core.router.routeTo(msg, clientIds);
  }

  deliverHeld(msg: StoredMessage, settled: () => void): void {
    const core = this.#core;
    // As for a client's own QoS 1 PUBLISH (handlers/publish.ts): only then may a delivery wait
    // unwritten, since only then is there an acknowledgement that can wait for it.
    if (msg.qos !== 1 || !core.options.durable) {
      core.router.route(msg);
      return settled();
    }
    VolatileDeliveries.markAckable(msg);
    core.router.route(msg);
    VolatileDeliveries.unmark(msg);
    core.volatile.whenSettled(msg, settled);
  }

  sharedRouteChanged(share: string, node: string, present: boolean): void {
    this.#core.subscriptions.shared.remoteChanged(share, node, present);
  }

  releaseSession(clientId: string): Promise<void> {
    return this.#core.sessions.release(clientId);
  }

  abandonSessions(reason: string): { clients: number; sessions: number } {
    return this.#core.sessions.abandonAll(reason);
  }

  adoptSession(loaded: LoadedSession, draining = false): void {
    this.#core.sessions.adopt(loaded, draining);
  }

  deliverBacklog<T>(fn: () => T): T {
    backlogTurn.active = true;
    try {
      return fn();
    } finally {
      backlogTurn.active = false;
    }
  }

  backlogDrained(clientIds: string[]): void {
    for (const id of clientIds) {
      const s = this.#core.sessions.map.get(id);
      if (s) this.#core.backlog.close(s);
    }
  }

  publishOrphanWill(clientId: string, kept: KeptWill): void {
    this.#core.wills.publishOrphan(clientId, kept);
  }

  retainedFromPeer(topic: string, msg: StoredMessage | null): void {
    this.#core.retainer.fromPeer(topic, msg);
  }

  localSessions(): string[] {
    return [...this.#core.sessions.map.keys()];
  }

  localRoutes(): string[] {
    return this.#core.subscriptions.filters();
  }
}
