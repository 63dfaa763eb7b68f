/**
 * The operations the HTTP API performs, for the whole cluster whichever node serves them: each
 * node answers admin requests about itself (answerLocally), and with a cluster the answers of
 * every live node are gathered (ClusterGather, implemented by src/cluster/admin_rpc.ts) and
 * merged. Retained messages are replicated to every node and publishes travel the core's own
 * path, so those are answered here.
 */
import type {
  AdminPublish,
  BrokerAdmin,
  ClientDetails,
  ClientSummary,
  SessionSummary,
} from "../broker/admin.ts";
import type { Broker } from "../broker/broker.ts";
import type { StoredMessage } from "../broker/model.ts";

/** A request one node answers about itself. */
export type NodeRequest =
  | { kind: "node" }
  | { kind: "clients" }
  | { kind: "client"; clientId: string }
  | { kind: "kick"; clientId: string }
  | { kind: "sessions" }
  | { kind: "delete-session"; clientId: string };

/** One node's health and counters. */
export interface NodeView {
  id: string;
  healthy: boolean;
  connections: number;
  uptimeSeconds: number;
  sessions: number;
  subscriptions: number;
  retained: number;
  messagesIn: number;
  messagesOut: number;
  dropped: number;
}

/** Sends a request to every live node (this one included) and resolves with their answers. */
export type ClusterGather = (req: NodeRequest) => Promise<{ node: string; answer: unknown }[]>;

/** What this node answers to `req` (JSON-safe). */
export function answerLocally(
  broker: Broker,
  startedAt: number,
  healthy: () => boolean,
  req: NodeRequest,
): unknown {
  const admin = broker.admin;
  switch (req.kind) {
    case "node": {
      const s = broker.stats;
      const view: NodeView = {
        id: broker.nodeId,
        healthy: healthy(),
        connections: s.connections,
        uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
        sessions: s.sessions,
        subscriptions: s.subscriptions,
        retained: s.retained,
        messagesIn: s.messagesIn,
        messagesOut: s.messagesOut,
        dropped: s.dropped,
      };
      return view;
    }
    case "clients":
      return admin.clients();
    case "client":
      return admin.client(req.clientId);
    case "kick":
      return admin.kick(req.clientId);
    case "sessions":
      return admin.sessions();
    case "delete-session":
      return admin.deleteSession(req.clientId);
  }
}

/** The cluster-wide (or single-node) view the routes use. */
export class Operations {
  constructor(
    readonly admin: BrokerAdmin,
    readonly local: (req: NodeRequest) => unknown,
    /** Absent on a single node. */
    readonly gather?: ClusterGather,
  ) {}

  get clustered(): boolean {
    return this.gather !== undefined;
  }

  async #all<T>(req: NodeRequest): Promise<T[]> {
    if (!this.gather) return [this.local(req) as T];
    return (await this.gather(req)).map((r) => r.answer as T);
  }

  /** Every live node's view; a node that did not answer in time is listed unhealthy. */
  async nodes(): Promise<NodeView[]> {
    const req: NodeRequest = { kind: "node" };
    if (!this.gather) return [this.local(req) as NodeView];
    return (await this.gather(req)).map(({ node, answer }) =>
      (answer as NodeView | null) ?? {
        id: node,
        healthy: false,
        connections: 0,
        uptimeSeconds: 0,
        sessions: 0,
        subscriptions: 0,
        retained: 0,
        messagesIn: 0,
        messagesOut: 0,
        dropped: 0,
      }
    );
  }

  /** Connected clients of every node; a client id counted once (the newest connection). */
  async clients(): Promise<ClientSummary[]> {
    const all = (await this.#all<ClientSummary[]>({ kind: "clients" })).filter(Array.isArray)
      .flat();
    const by = new Map<string, ClientSummary>();
    for (const c of all) {
      const had = by.get(c.clientId);
      if (!had || had.connectedAt < c.connectedAt) by.set(c.clientId, c);
    }
    return [...by.values()].sort((a, b) => cmp(a.clientId, b.clientId));
  }

  async client(clientId: string): Promise<ClientDetails | null> {
    const all = await this.#all<ClientDetails | null>({ kind: "client", clientId });
    return all.find((c) => c !== null && typeof c === "object") ?? null;
  }

  async kick(clientId: string): Promise<boolean> {
    return (await this.#all<boolean>({ kind: "kick", clientId })).some((x) => x === true);
  }

  /**
   * Sessions of every node, each client id once: a connected one wins over an offline copy (a
   * node that has not yet noticed a takeover).
   */
  async sessions(): Promise<SessionSummary[]> {
    const all = (await this.#all<SessionSummary[]>({ kind: "sessions" })).filter(Array.isArray)
      .flat();
    const by = new Map<string, SessionSummary>();
    for (const s of all) {
      const had = by.get(s.clientId);
      if (!had || (!had.connected && s.connected)) by.set(s.clientId, s);
    }
    return [...by.values()].sort((a, b) => cmp(a.clientId, b.clientId));
  }

  async deleteSession(clientId: string): Promise<boolean> {
    const all = await this.#all<boolean>({ kind: "delete-session", clientId });
    return all.some((x) => x === true);
  }

  retained(filter: string): StoredMessage[] {
    return this.admin.retained(filter);
  }

  retainedOf(topic: string): StoredMessage | null {
    return this.admin.retainedOf(topic);
  }

  deleteRetained(topic: string): Promise<boolean> {
    return this.admin.deleteRetained(topic);
  }

  publish(p: AdminPublish): Promise<void> {
    return this.admin.publish(p);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
