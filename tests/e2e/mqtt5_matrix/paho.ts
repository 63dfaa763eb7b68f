/** Runs paho5_props.py (Eclipse Paho for Python, MQTT 5.0) against a matrix deployment. */
import type { Deployment } from "./deployment.ts";
import { ignoreUnless } from "../../helpers/cli.ts";

function havePaho(): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import paho.mqtt.client"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** True when paho-mqtt for /usr/bin/python3 is missing outside CI (on CI the case runs and fails). */
export const PAHO_IGNORE: boolean = ignoreUnless(havePaho(), "paho-mqtt for /usr/bin/python3");

/** What paho5_props.py reports about the message it received. */
export interface PahoResult {
  userProperty: [string, string][];
  contentType: string;
  responseTopic: string;
  payloadFormatIndicator: number;
  correlationData: string;
}

/**
 * Subscribes with paho on node 1 and publishes with paho on node 0 of `d`, over `d`'s transport,
 * one message with interleaved repeated user property names; returns what arrived.
 */
export async function pahoUserProperties(d: Deployment, prefix: string): Promise<PahoResult> {
  const s = d.address(1);
  const p = d.address(0);
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      new URL("./paho5_props.py", import.meta.url).pathname,
      d.transport,
      s.host,
      String(s.port),
      p.host,
      String(p.port),
      d.caFile ?? "-",
      prefix,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  const line = dec.decode(out.stdout).trim().split("\n").pop() || "{}";
  let r: PahoResult & { error?: string };
  try {
    r = JSON.parse(line);
  } catch {
    throw new Error(`paho5_props.py printed ${line}\n${dec.decode(out.stderr)}`);
  }
  if (r.error) throw new Error(`paho5_props.py: ${r.error}\n${dec.decode(out.stderr)}`);
  return r;
}
