/**
 * The Docker image's HEALTHCHECK: asks the broker's /health endpoint, found where the broker
 * itself looks for it. The broker's flags are read from PID 1's command line (the image's
 * ENTRYPOINT) and passed with this process's environment (the container's) through the same
 * configuration loader, so `-e SERVER_PORT=...`, `--server.port ...` and a mounted YAML file all
 * move the health check along with the endpoint. Exit 0 = healthy, 1 = not (Docker's contract).
 */
import { loadConfig } from "../../src/config/load.ts";

/** The broker's own arguments: those after main.ts on its command line. */
function brokerArgs(cmdline: string): string[] {
  const argv = cmdline.split("\0").filter((a) => a !== "");
  const main = argv.findIndex((a) => a === "main.ts" || a.endsWith("/main.ts"));
  return main === -1 ? [] : argv.slice(main + 1);
}

async function check(): Promise<string | null> {
  const args = brokerArgs(await Deno.readTextFile("/proc/1/cmdline"));
  const { config } = loadConfig({ args, env: Deno.env.toObject() });
  if (!config.httpEnabled) return "mqttwk.broker.http-enabled is false: no /health to ask";
  if (config.httpPort === 0) return "server.port is 0 (a random port): set a fixed one";
  const host = ["0.0.0.0", "::", ""].includes(config.httpHost) ? "127.0.0.1" : config.httpHost;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${config.httpPort}/health`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    return `${url}: ${(err as Error).message}${cause ? ` (${cause.message})` : ""}`;
  }
  const body = await res.text();
  return res.ok ? null : `${url} answered ${res.status}: ${body.slice(0, 200)}`;
}

if (import.meta.main) {
  try {
    const problem = await check();
    if (problem) console.error(`unhealthy: ${problem}`);
    Deno.exit(problem ? 1 : 0);
  } catch (err) {
    console.error(`unhealthy: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
