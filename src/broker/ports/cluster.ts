/**
 * The seam between the broker core and a cluster implementation (src/cluster/, Redis). The core
 * stays single-node when no ClusterLink is given.
 */
import type { Will } from "../../codec/packets.ts";
import type { Logger } from "../../log.ts";
import type { LoadedSession, StoredMessage } from "../model.ts";

/** What a cluster implementation may ask of the local broker. */
export interface ClusterHost {
  readonly nodeId: string;
  readonly log: Logger;
  /**
   * Delivers a message that entered on another node to local subscribers only; with `share`, to
   * one local member of that shared group only (the sending node picked this node for it), or,
   * with none left, on to another node with members (`hops`: how often it was passed on). A
   * returned promise resolves once a copy passed on is queued.
   */
  deliverFromPeer(msg: StoredMessage, share?: string, hops?: number): void | Promise<void>;
  /**
   * Delivers a message from another node to the local sessions `clientIds` only, each if it
   * subscribes to the topic: a copy passed on for sessions that moved here from that node.
   */
  deliverTo?(msg: StoredMessage, clientIds: readonly string[]): void;
  /**
   * Delivers a message read from this node's stream to local subscribers, as deliverFromPeer
   * without a group, for a caller whose own acknowledgement (the stream entry's) can wait: a
   * QoS 1 delivery to a connected persistent session may stay unwritten until its subscriber
   * acknowledges it, as for a local publisher. `settled` is called once, when every delivery so
   * held was acknowledged or written to the store (the next store flush makes those durable):
   * at once when none was held.
   */
  deliverHeld?(msg: StoredMessage, settled: () => void): void;
  /** Node `node` gained its first (`present`) or lost its last member of shared group `share`. */
  sharedRouteChanged(share: string, node: string, present: boolean): void;
  /**
   * Another node takes over `clientId`: closes the local connection (its will is published),
   * makes its state durable in the shared store and forgets the session locally.
   */
  releaseSession(clientId: string): Promise<void>;
  /**
   * This node was fenced (another node took its sessions over while it was unresponsive): closes
   * every client without publishing wills and forgets every session without writing anything.
   */
  abandonSessions(reason: string): { clients: number; sessions: number };
  /**
   * Takes over an offline session of a dead node so its subscriptions keep collecting messages.
   * `draining`: the dead node's stream backlog is delivered after this (deliverBacklog), before
   * anything newer reaches the session, until backlogDrained names it.
   */
  adoptSession(loaded: LoadedSession, draining?: boolean): void;
  /**
   * Runs `fn` (which delivers part of a dead node's stream backlog, synchronously): sessions
   * adopted with `draining` get these messages before the newer ones queued meanwhile.
   */
  deliverBacklog?<T>(fn: () => T): T;
  /** The stream backlog of these adopted sessions is complete. */
  backlogDrained?(clientIds: string[]): void;
  /** Publishes the will of a clean-session client whose node died with its connection open. */
  publishOrphanWill(clientId: string, kept: KeptWill): void;
  /** A retained message was set (or, with null, deleted) on another node. */
  retainedFromPeer(topic: string, msg: StoredMessage | null): void;
  /** Client ids of the sessions this node holds (connected or offline). */
  localSessions(): string[];
  /** Filters with at least one local subscriber (for re-announcing routes after a Redis outage). */
  localRoutes(): string[];
}

/** A clean-session client's will, kept where a surviving node can find it. */
export interface KeptWill {
  will: Will;
  username?: string;
  protocolVersion: number;
}

/** One node's `$SYS` figures at one moment (see sys_snapshot.ts), as the nodes share them. */
export interface NodeSysStats {
  node: string;
  /** When the node took them (ms since the epoch, its own clock). */
  at: number;
  version: string;
  /** Raw figures by name (counters, gauges, load averages); summed or maxed for the cluster. */
  values: Record<string, number>;
}

/** What the nodes' shared `$SYS` figures are after this node added its own. */
export interface SharedSysStats {
  /** Every node whose figures are at most `maxAgeMs` old, this node included. */
  live: NodeSysStats[];
  /** Nodes whose figures were found stale and removed now (their `$SYS/nodes/...` can go). */
  gone: string[];
}

/** What the broker asks of the cluster. */
export interface ClusterLink {
  /** False while the shared store is unreachable (the node serves its own clients meanwhile). */
  readonly healthy?: boolean;
  start(host: ClusterHost): Promise<void>;
  stop(): Promise<void>;
  /**
   * The first local session subscribed to `filter`. A returned promise resolves once every node
   * routes the filter here (the SUBACK waits for it).
   */
  routeAdded(filter: string): void | Promise<void>;
  /** The last local session left `filter`. */
  routeRemoved(filter: string): void;
  /**
   * Sends a message accepted on this node to the nodes with matching routes. A returned promise
   * resolves once QoS 1/2 copies are safely queued for them (the publisher's ack waits for it).
   */
  forward(msg: StoredMessage): void | Promise<void>;
  /**
   * Whether another node routes `topic`, from the route table forward() uses; undefined when
   * the link cannot tell (not connected). Lets a 5.0 PUBACK say No matching subscribers (0x10)
   * only when that is true cluster-wide; without it the broker never says so in a cluster.
   */
  routedElsewhere?(topic: string): boolean | undefined;
  /**
   * Sends a message to node `node` for its members of shared group `share` only (this node
   * picked it); QoS 1/2 like `forward`. `hops`: how often it was passed on already.
   */
  forwardShared?(
    msg: StoredMessage,
    node: string,
    share: string,
    hops: number,
  ): void | Promise<void>;
  /**
   * Makes sure no other node holds `clientId`; resolves once any holder has released it, to
   * whether some node (this one included) held it, so that its record may exist in the shared
   * store (void: the link cannot tell).
   */
  acquireSession(clientId: string): Promise<boolean | void>;
  /**
   * The CONNECT that acquired `clientId` is done with the shared store: its session is resumed
   * here (or the CONNECT failed). Messages that arrived for it meanwhile may now be delivered.
   */
  sessionResumed?(clientId: string): void;
  /** Tells the other nodes that a retained message changed. */
  retainedChanged(topic: string, msg: StoredMessage | null): void;
  /**
   * A clean-session client with a will is connected here (`kept`), or its will no longer needs
   * keeping (null: it left, or its will was published). If this node dies, the node that takes
   * it over publishes the wills still kept. (Persistent sessions keep theirs in their record.)
   */
  keepWill?(clientId: string, kept: KeptWill | null): void;
  /**
   * Stores this node's `$SYS` figures where every node reads them and returns every live
   * node's (for the cluster totals); undefined while the link cannot tell (Redis away).
   */
  shareSysStats?(mine: NodeSysStats, maxAgeMs: number): Promise<SharedSysStats | undefined>;
}
