/** Shared test data for the auth tests. */
import type { AuthRequest } from "../../src/broker/ports/auth.ts";
import type { Logger } from "../../src/log.ts";

/** The original MqttWk's demo public key (RSA-512), as in keystore/demo-auth-public.pem. */
export const DEMO_PUBLIC_PEM = `-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAOW703/wxZdFmjDikPMiOPWCsnlQIdSY
58x6ipKqN3IHfQVfn3/5G7WixLxtAbqyIkgDb62/DjOLRvbRbM/ycvECAwEAAQ==
-----END PUBLIC KEY-----
`;

export const DEMO_USER = "demo";
export const DEMO_PASSWORD = "8F3B8DE2FDC8BD3D792BE77EAC412010971765E5BDD6C499ADCEE840CE441BDE" +
  "F17E30684BD95CA708F55022222CC6161D0D23C2DFCB12F8AC998F59E7213393";

export function request(over: Partial<AuthRequest> & { pw?: string } = {}): AuthRequest {
  const { pw, ...rest } = over;
  return {
    clientId: "c1",
    remoteAddress: "127.0.0.1:50000",
    transport: "tcp",
    protocolVersion: 4,
    ...(pw === undefined ? {} : { password: new TextEncoder().encode(pw) }),
    ...rest,
  };
}

/** A logger that keeps every line, to check what was (and was not) logged. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    level: "debug",
    enabled: () => true,
    debug: (m) => lines.push(`DEBUG ${m}`),
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

export async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "mqttwk-auth-" });
}
