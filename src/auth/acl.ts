/**
 * ACL files in mosquitto's acl_file syntax, with mosquitto's meaning:
 *
 *   topic [read|write|readwrite|deny] <topic>    before any section: clients without a username
 *   user <username>                              starts that user's section
 *   clientid <client id>                         starts that client id's section (an extension)
 *   topic [read|write|readwrite|deny] <topic>    inside a section: that user / client id
 *   pattern [read|write|readwrite|deny] <topic>  every client, wherever it appears; %u and %c
 *                                                are replaced by the username and client id
 *
 * The access word defaults to readwrite. A matching `deny` rule wins over any grant; without a
 * matching grant access is denied. read = subscribe and receive retained messages; write =
 * publish (wills included).
 */
import type { ClientInfo } from "../broker/model.ts";

export type Access = "read" | "write" | "readwrite" | "deny";

interface Rule {
  access: Access;
  /** Topic filter as written (patterns still hold %u / %c). */
  filter: string;
  line: number;
}

export interface AclFile {
  anonymous: Rule[];
  users: Map<string, Rule[]>;
  clientIds: Map<string, Rule[]>;
  patterns: Rule[];
}

export class AclError extends Error {
  override name = "AclError";
}

const ACCESS = new Set<string>(["read", "write", "readwrite", "deny"]);

function validFilter(f: string): boolean {
  if (f.length === 0) return false;
  const levels = f.split("/");
  return levels.every((l, i) =>
    (l === "#" && i === levels.length - 1) || l === "+" || (!l.includes("+") && !l.includes("#"))
  );
}

export function parseAcl(text: string, path = "ACL file"): AclFile {
  const acl: AclFile = { anonymous: [], users: new Map(), clientIds: new Map(), patterns: [] };
  let section = acl.anonymous;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `${path} line ${i + 1}`;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const word = m[1].toLowerCase();
    let rest = m[2];
    if (word === "user" || word === "clientid") {
      if (rest === "") throw new AclError(`${where}: ${word} needs a name`);
      const map = word === "user" ? acl.users : acl.clientIds;
      if (!map.has(rest)) map.set(rest, []);
      section = map.get(rest)!;
      return;
    }
    if (word !== "topic" && word !== "pattern") {
      throw new AclError(
        `${where}: unknown keyword "${m[1]}" (expected topic, pattern, user or clientid)`,
      );
    }
    let access: Access = "readwrite";
    const a = /^(\S+)\s*(.*)$/.exec(rest);
    if (a && ACCESS.has(a[1].toLowerCase())) {
      access = a[1].toLowerCase() as Access;
      rest = a[2];
    }
    // As in mosquitto, the topic is the rest of the line, so it may contain spaces.
    const filter = rest.trim();
    if (!validFilter(filter)) throw new AclError(`${where}: invalid topic filter "${filter}"`);
    (word === "pattern" ? acl.patterns : section).push({ access, filter, line: i + 1 });
  });
  return acl;
}

// --- Matching -------------------------------------------------------------------------------------

/** True when topic name `t` (levels) matches filter `f` (levels). */
function matches(f: string[], t: string[]): boolean {
  // MQTT-4.7.2-1: wildcards at the first level do not match $-topics.
  if (t.length > 0 && t[0].startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when every topic matched by filter `sub` is also matched by filter `rule`. */
export function filterWithin(sub: string[], rule: string[]): boolean {
  if (sub.length > 0 && sub[0].startsWith("$") && (rule[0] === "+" || rule[0] === "#")) {
    return false;
  }
  for (let i = 0;; i++) {
    if (i < rule.length && rule[i] === "#") return true;
    if (i >= sub.length) return i >= rule.length;
    if (i >= rule.length) return false;
    const s = sub[i];
    if (s === "#") return false; // only a # in the rule covers any depth, handled above
    if (rule[i] === "+") continue;
    if (s === "+" || s !== rule[i]) return false;
  }
}

/** True when some topic is matched by both filters. */
export function filtersOverlap(a: string[], b: string[]): boolean {
  const dollar = (x: string[], y: string[]) =>
    x.length > 0 && x[0].startsWith("$") && (y[0] === "+" || y[0] === "#");
  if (dollar(a, b) || dollar(b, a)) return false;
  for (let i = 0;; i++) {
    // "#" also matches the parent level, so running out on the other side still overlaps.
    if ((i < a.length && a[i] === "#") || (i < b.length && b[i] === "#")) return true;
    if (i >= a.length || i >= b.length) return a.length === b.length;
    if (a[i] !== "+" && b[i] !== "+" && a[i] !== b[i]) return false;
  }
}

interface Compiled {
  read: string[][];
  write: string[][];
  deny: string[][];
}

const SPECIAL = /[/+#]/;

function substitute(filter: string, client: ClientInfo): string | null {
  if (!filter.includes("%")) return filter;
  let ok = true;
  const out = filter.replace(/%[uc]/g, (m) => {
    const v = m === "%u" ? client.username : client.clientId;
    // A value with "/", "+" or "#" would widen the rule into other users' topics.
    if (v === undefined || v === "" || SPECIAL.test(v)) ok = false;
    return v ?? "";
  });
  return ok ? out : null;
}

function compile(acl: AclFile, client: ClientInfo): Compiled {
  const c: Compiled = { read: [], write: [], deny: [] };
  const add = (r: Rule, filter: string) => {
    const levels = filter.split("/");
    if (r.access === "deny") c.deny.push(levels);
    if (r.access === "read" || r.access === "readwrite") c.read.push(levels);
    if (r.access === "write" || r.access === "readwrite") c.write.push(levels);
  };
  const own = client.username === undefined ? acl.anonymous : acl.users.get(client.username) ?? [];
  for (const r of own) add(r, r.filter);
  for (const r of acl.clientIds.get(client.clientId) ?? []) add(r, r.filter);
  for (const r of acl.patterns) {
    const f = substitute(r.filter, client);
    if (f !== null) add(r, f);
  }
  return c;
}

/**
 * The compiled rules for a client are cached on its ClientInfo object (stable for a connection)
 * and rebuilt when the ACL is replaced or the identity differs.
 */
export class AclChecker {
  #acl: AclFile;
  #cache = new WeakMap<ClientInfo, { acl: AclFile; key: string; rules: Compiled }>();

  constructor(acl: AclFile) {
    this.#acl = acl;
  }

  replace(acl: AclFile): void {
    this.#acl = acl;
  }

  #rules(client: ClientInfo): Compiled {
    const key = `${
      client.username === undefined ? "\0" : "u" + client.username
    }\0${client.clientId}`;
    const hit = this.#cache.get(client);
    if (hit && hit.acl === this.#acl && hit.key === key) return hit.rules;
    const rules = compile(this.#acl, client);
    this.#cache.set(client, { acl: this.#acl, key, rules });
    return rules;
  }

  canPublish(client: ClientInfo, topic: string): boolean {
    const r = this.#rules(client);
    const t = topic.split("/");
    if (r.deny.some((f) => matches(f, t))) return false;
    return r.write.some((f) => matches(f, t));
  }

  /**
   * A filter is allowed when all of it lies within one readable rule and not all of it within a
   * deny rule (mosquitto's rule); for a topic name (retained and checked deliveries) that
   * reduces to plain matching. A filter that only partly overlaps a deny rule is granted and
   * its messages are checked one by one (checkEachDelivery).
   */
  canSubscribe(client: ClientInfo, filter: string): boolean {
    const r = this.#rules(client);
    const f = filter.split("/");
    if (r.deny.some((d) => filterWithin(f, d))) return false;
    return r.read.some((g) => filterWithin(f, g));
  }

  /** Whether a granted filter overlaps a deny rule, so each message must be checked. */
  checkEachDelivery(client: ClientInfo, filter: string): boolean {
    const r = this.#rules(client);
    if (r.deny.length === 0) return false;
    const f = filter.split("/");
    return r.deny.some((d) => filtersOverlap(d, f));
  }
}
