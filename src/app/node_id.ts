/** The node id: how this broker tells itself apart from others in a cluster and in its logs. */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";

/** The node id from config, else the one kept in the data directory, else a new one kept there. */
export function resolveNodeId(config: Config, log: Logger): string {
  if (config.nodeId) return config.nodeId;
  const random = () => `${config.brokerId}-${crypto.randomUUID().slice(0, 8)}`;
  // Only a persistent store outlives the process, so only then is a stable id worth keeping.
  if (config.persistence !== "sqlite") return random();
  const file = `${config.dataDir}/node-id`;
  try {
    const id = Deno.readTextFileSync(file).trim();
    if (id) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = random();
  Deno.mkdirSync(config.dataDir, { recursive: true });
  Deno.writeTextFileSync(file, id + "\n");
  log.info(`generated node id ${id} (kept in ${file})`);
  return id;
}
