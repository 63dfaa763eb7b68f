/** Turns the broker configuration into each listener's own settings. */
import type { Config } from "../config/load.ts";
import type { TcpListenerSettings } from "./listener_tcp.ts";
import type { TlsListenerSettings } from "./listener_tls.ts";
import type { WsListenerSettings } from "./listener_ws.ts";
import type { WssListenerSettings } from "./listener_wss.ts";
import type { TlsFiles } from "./tls_material.ts";
import { maxFrameSize } from "./websocket.ts";

/** The certificate files TLS and WSS share, and how they are kept fresh. */
export interface CertificateSettings {
  files: TlsFiles;
  /** Seconds between checks of the files for changes; 0 = only on SIGHUP. */
  watchInterval: number;
  /** Whether the files are the development defaults (the error then says how to make them). */
  defaults: boolean;
}

/** Which listeners run, each with its own settings; absent ones are off. */
export interface ListenerSettings {
  tcp?: TcpListenerSettings;
  ws?: WsListenerSettings;
  /** Set when either TLS listener runs. */
  certificates?: CertificateSettings;
  tls?: TlsListenerSettings;
  wss?: WssListenerSettings;
}

/** Where the TLS certificate and key are looked for unless configured. */
export const DEFAULT_CERT_FILE = "keystore/server.pem";
export const DEFAULT_KEY_FILE = "keystore/server.key";
const PROXY_LISTENERS = ["tcp", "tls", "ws", "wss"];

/** Whether the configuration turns the TLS and WSS listeners on. */
export function tlsEnabled(config: Config): boolean {
  return config.sslEnabled || config.sslCertFile !== "";
}

/** Reads the listener part of `config`; throws on an unknown proxy-protocol listener name. */
export function listenerSettings(config: Config): ListenerSettings {
  const host = config.host || "0.0.0.0";
  const proxied = new Set(config.proxyProtocol.map((s) => s.toLowerCase()));
  for (const name of proxied) {
    if (!PROXY_LISTENERS.includes(name)) {
      throw new Error(
        `mqttwk.broker.proxy-protocol: unknown listener "${name}"; use ${
          PROXY_LISTENERS.join(", ")
        }`,
      );
    }
  }
  const at = (name: string, port: number) => ({
    host,
    port,
    ...(proxied.has(name) ? { proxyTimeout: config.proxyProtocolTimeout } : {}),
  });
  const web = {
    path: config.websocketPath,
    maxFrameSize: maxFrameSize(config.maxPacketSize),
    handshakeTimeout: config.connectTimeout,
    trustedProxies: config.websocketTrustedProxies,
  };
  const out: ListenerSettings = {};
  if (config.tcpEnabled) out.tcp = at("tcp", config.port);
  if (config.websocketEnabled) out.ws = { ...at("ws", config.websocketPort), ...web };
  if (tlsEnabled(config)) {
    out.certificates = {
      files: {
        certFile: config.sslCertFile || DEFAULT_CERT_FILE,
        keyFile: config.sslKeyFile || DEFAULT_KEY_FILE,
        caFile: config.sslCaFile || undefined,
        clientAuth: config.sslClientAuth,
        passphrase: config.sslPassword || undefined,
      },
      watchInterval: config.sslWatchInterval,
      defaults: config.sslCertFile === "",
    };
    const clientCerts = {
      clientAuth: config.sslClientAuth,
      cnAsUsername: config.sslCnAsUsername,
      handshakeTimeout: config.connectTimeout,
    };
    out.tls = { ...at("tls", config.sslPort), ...clientCerts };
    if (config.wssEnabled) out.wss = { ...at("wss", config.wssPort), ...web, ...clientCerts };
  }
  return out;
}
