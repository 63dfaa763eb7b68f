/** What the HTTP API's routes are given by the app: the operations and the node's surroundings. */
import type { Logger } from "../log.ts";
import type { Operations } from "./ops.ts";

/** One MQTT listener, as /api/v1/status lists it. */
export interface ListenerView {
  kind: string;
  host: string;
  port: number;
  path?: string;
}

/** The app-level facts and actions the routes need. */
export interface ApiEnv {
  ops: Operations;
  log: Logger;
  version: string;
  nodeId: string;
  startedAt: number;
  listeners(): ListenerView[];
  store(): { kind: string; healthy: boolean };
  kafka(): { enabled: boolean; healthy: boolean };
  /** What SIGHUP does; false when the files could not be loaded. */
  reload(): Promise<boolean>;
}
