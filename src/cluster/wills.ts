/**
 * Wills kept for survivors. A clean-session client with a will has it kept in
 * `P {g}:wills:<node>` while it is connected here (one HSET on CONNECT, one HDEL when it
 * leaves), so the node that takes this node over can publish it if this node dies. Persistent
 * sessions keep theirs in their session record instead.
 */
import type { KeptWill } from "../broker/ports/cluster.ts";
import type { LinkContext } from "./context.ts";
import { decodeWire, encodeWire } from "./wire.ts";

/** The wills of this node's clean-session clients, where a survivor finds them. */
export class KeptWills {
  constructor(private readonly ctx: LinkContext) {}

  /** Keeps `clientId`'s will, or (null) forgets it. */
  keep(clientId: string, kept: KeptWill | null): void {
    const { cmd, me } = this.ctx;
    const key = this.ctx.g(`wills:${me}`);
    // Not awaited: queued by the client while Redis is away, and in order with later changes.
    const done = kept
      ? cmd.hset(key, clientId, encodeWire({ kind: "will", kept }))
      : cmd.hdel(key, clientId);
    done.catch((e: Error) =>
      this.ctx.log.warn(`cluster: keeping the will of ${clientId} failed: ${e.message}`)
    );
  }

  /** Publishes the wills `node` still kept for its clean-session clients; returns how many. */
  async publishOf(node: string): Promise<number> {
    const { cmd, host } = this.ctx;
    const key = this.ctx.g(`wills:${node}`);
    const kept = await cmd.hgetallBuffer(key);
    const ids = Object.keys(kept);
    for (const id of ids) {
      try {
        const wire = decodeWire(kept[id]);
        if (wire.kind !== "will") throw new Error(`a ${wire.kind} message`);
        host.publishOrphanWill(id, wire.kept);
      } catch (e) {
        host.log.warn(`cluster: will of ${id} from ${node} unreadable: ${e}`);
      }
    }
    // Published at least once: a crash right here publishes them again on the next takeover.
    if (ids.length > 0) await cmd.del(key);
    return ids.length;
  }
}
