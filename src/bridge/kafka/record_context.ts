/** What every record the bridge writes takes from the broker and the bridge's settings. */
import type { KeyMode, RecordFormat } from "./settings.ts";

/** The record format, the key choice and the broker's identity in the original's records. */
export interface RecordContext {
  keyMode: KeyMode;
  format: RecordFormat;
  brokerId: string;
  nodeId: string;
  /** The original sent the JVM's process id; ours is the Deno process id. */
  processId: string;
}
