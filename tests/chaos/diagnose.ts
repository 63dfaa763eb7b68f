/**
 * When a chaos scenario ends with acknowledged messages missing at the subscriber, this says
 * where they are: still in the subscriber's stored session (queued, in flight, released) — i.e.
 * slow or stuck, not lost — or nowhere in the store (really lost). Reads the node's SQLite file
 * on a read-only connection while the broker runs (WAL allows it).
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { parseKey } from "./invariants.ts";

/** What the store holds of the missing messages, per state. */
export interface QueueReport {
  /** Outbound rows of the subscriber, per state. */
  rows: Record<string, number>;
  /** Missing messages found in those rows, per state. */
  missingFound: Record<string, number>;
  /** Missing messages not in the store at all. */
  missingAbsent: number;
  /** The missing messages that are in the store (messageKeys). */
  stored: string[];
  /** Inbound QoS 2 packet ids still held per publisher session. */
  inboundQos2: Record<string, number>;
}

const STATES = ["queued", "sent", "released"];

/** Looks up `missing` (messageKeys) in the outbound rows of `clientId` in `dataDir`'s store. */
export function inspectQueue(dataDir: string, clientId: string, missing: string[]): QueueReport {
  const db = new DatabaseSync(join(dataDir, "mqttwk.db"), { readOnly: true });
  try {
    const rows: Record<string, number> = {};
    const found = new Map<string, string>();
    const stmt = db.prepare("SELECT state, payload FROM outbound WHERE client_id = ?");
    for (const r of stmt.iterate(clientId) as Iterable<{ state: number; payload: Uint8Array }>) {
      const state = STATES[r.state] ?? String(r.state);
      rows[state] = (rows[state] ?? 0) + 1;
      const k = parseKey(new TextDecoder().decode(r.payload));
      if (k) found.set(`${k.publisher}:${k.seq}`, state);
    }
    const missingFound: Record<string, number> = {};
    let missingAbsent = 0;
    const stored: string[] = [];
    for (const m of missing) {
      const st = found.get(m);
      if (st === undefined) missingAbsent++;
      else {
        missingFound[st] = (missingFound[st] ?? 0) + 1;
        stored.push(m);
      }
    }
    const inboundQos2: Record<string, number> = {};
    const inb = db.prepare("SELECT client_id, count(*) AS n FROM inbound_qos2 GROUP BY client_id");
    for (const r of inb.all() as { client_id: string; n: number }[]) inboundQos2[r.client_id] = r.n;
    return { rows, missingFound, missingAbsent, stored, inboundQos2 };
  } finally {
    db.close();
  }
}
