/**
 * How many sockets and client connections the process can afford under its open-file limit.
 *
 * Two limits share the descriptors: the transport's socket budget counts every socket the
 * listeners hold from accept (TLS handshakes, WebSocket upgrades, PROXY headers and HTTP
 * requests included) and sheds new ones past it; the core's max-connections counts MQTT
 * connections, which are a subset of those sockets. So sockets ≤ socket budget = open-file
 * limit − RESERVED_FDS, and max-connections stays below the socket budget by a headroom, so that
 * while MQTT connections are full, a client can still be refused with CONNACK 0x03 rather than
 * shed unanswered.
 */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";

/**
 * Descriptors kept back from clients: the runtime's own (about 30), the listeners, the store
 * and its worker, Redis and Kafka clients, certificate and password files being read.
 */
export const RESERVED_FDS = 100;

/** Fewest client sockets worth starting for; below this the broker refuses to start. */
export const MIN_CLIENT_SOCKETS = 64;

/** The lowest open-file limit the broker starts with: RESERVED_FDS + MIN_CLIENT_SOCKETS. */
export const MIN_FILE_LIMIT = RESERVED_FDS + MIN_CLIENT_SOCKETS;

/** Sockets beyond max-connections for handshakes and refusals under way: at most this many. */
const HEADROOM = 100;

/** The process's open-file limit (ulimit -n), or null when it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const m = limits.match(/Max open files\s+(\d+)/);
    if (m) return Number(m[1]);
  } catch {
    // Deno lets only --allow-all read /proc/self; a child shell inherits the same limit.
  }
  try {
    const out = new Deno.Command("sh", { args: ["-c", "ulimit -n"], stderr: "null" }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The limits actually used, and the open-file limit they were derived from. */
export interface ConnectionBudget {
  /** MQTT connections the core admits. */
  maxConnections: number;
  /** Sockets all listeners together may hold (the HTTP port included). */
  socketBudget: number;
  fileLimit: number | null;
}

/**
 * Derives the socket budget and the connection limit from the open-file limit. Throws (naming
 * the limit, `ulimit -n` and max-connections) when the limit leaves fewer than
 * MIN_CLIENT_SOCKETS sockets; warns when it lowers `max-connections`.
 */
export function connectionBudget(
  config: Config,
  log: Logger,
  fileLimit: number | null = openFileLimit(),
): ConnectionBudget {
  const wanted = config.maxConnections;
  if (fileLimit === null) {
    // Unknown limit: nothing to derive from, so the sockets follow the connection limit.
    return { maxConnections: wanted, socketBudget: wanted + HEADROOM, fileLimit };
  }
  const socketBudget = fileLimit - RESERVED_FDS;
  if (socketBudget < MIN_CLIENT_SOCKETS) {
    throw new Error(
      `the open-file limit ${fileLimit} leaves no room for clients: ${RESERVED_FDS} ` +
        `descriptors are reserved and at least ${MIN_CLIENT_SOCKETS} are needed for clients; ` +
        `raise it to at least ${MIN_FILE_LIMIT} (\`ulimit -n ${wantedLimit(wanted)}\` for ` +
        `mqttwk.broker.max-connections=${wanted})`,
    );
  }
  const headroom = Math.min(HEADROOM, Math.floor(socketBudget / 4));
  const room = socketBudget - headroom;
  let maxConnections = wanted;
  if (wanted > room) {
    maxConnections = room;
    log.warn(
      `LOWERED mqttwk.broker.max-connections from ${wanted} to ${maxConnections}: the ` +
        `open-file limit is ${fileLimit} (${RESERVED_FDS} reserved, ${headroom} for handshakes); ` +
        `run with \`ulimit -n ${wantedLimit(wanted)}\` or more for ${wanted} connections`,
    );
  }
  return { maxConnections, socketBudget, fileLimit };
}

/** The open-file limit `maxConnections` needs. */
function wantedLimit(maxConnections: number): number {
  return maxConnections + HEADROOM + RESERVED_FDS;
}
