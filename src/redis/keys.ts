/**
 * Every Redis key and channel name of MqttWk, under one configurable prefix `P` (default
 * "mqttwk:"), so several broker clusters can share a Redis. `{…}` is a Redis Cluster hash tag.
 *
 * Store (src/store/redis.ts):
 *   P s:{<id>}:s|sub|out|q2|exp   one session's keys, all in the session's slot
 *   P {g}:sessions|expiry|retained global indexes
 * Cluster link (src/cluster/):
 *   P {g}:<name>                  membership, routes, holders, wills (see redis_link.ts)
 *   P stream:{<node>}             QoS 1/2 messages forwarded to a node
 *   P ch:<name>                   pub/sub channels
 */

/** Default prefix of every key and channel. */
export const DEFAULT_PREFIX = "mqttwk:";

/** Key and channel names under one prefix. */
export class RedisKeys {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {
    if (prefix.includes("{") || prefix.includes("}")) {
      throw new Error(`redis key prefix ${JSON.stringify(prefix)} must not contain "{" or "}"`);
    }
  }
  /** The five keys of one session, all in the session's slot: s, sub, out, q2, exp. */
  session(id: string): [string, string, string, string, string] {
    const base = `${this.prefix}s:{${tag(id)}}:`;
    return [base + "s", base + "sub", base + "out", base + "q2", base + "exp"];
  }
  get sessions(): string {
    return `${this.prefix}{g}:sessions`;
  }
  get expiry(): string {
    return `${this.prefix}{g}:expiry`;
  }
  get retained(): string {
    return `${this.prefix}{g}:retained`;
  }
  /** A key in the global slot: `P {g}:<name>`. */
  global(name: string): string {
    return `${this.prefix}{g}:${name}`;
  }
  /** The stream of QoS 1/2 messages forwarded to `node`, in the node's own slot. */
  stream(node: string): string {
    return `${this.prefix}stream:{${node}}`;
  }
  /** A pub/sub channel: `P ch:<name>`. */
  channel(name: string): string {
    return `${this.prefix}ch:${name}`;
  }
}

/** A client id as a hash tag: "%" and "}" percent-escaped, so the tag is always the whole id. */
function tag(id: string): string {
  if (id === "") return "%";
  return id.replace(/%/g, "%25").replace(/\}/g, "%7D");
}
