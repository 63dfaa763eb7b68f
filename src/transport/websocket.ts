/**
 * MQTT over WebSocket (Deno.serve + Deno.upgradeWebSocket), adapted to ByteConnection.
 * Binary frames carry an arbitrary slicing of the MQTT byte stream (a packet may span frames,
 * a frame may hold several packets); text frames are a protocol error.
 */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "./connection.ts";
import type { Listening } from "./tcp.ts";

export const MQTT_SUBPROTOCOLS = ["mqtt", "mqttv3.1", "mqttv3.1.1"];

/** Above this many unsent bytes a write waits, so a slow browser exerts backpressure. */
const HIGH_WATER = 256 * 1024;

export function fromWebSocket(
  socket: WebSocket,
  remoteAddress: string,
  transport: string,
  log: Logger,
): ByteConnection {
  socket.binaryType = "arraybuffer";
  const close = () => {
    try {
      socket.close();
    } catch {
      // already closing
    }
  };
  const readable = new ReadableStream<Uint8Array>({
    start(ctrl) {
      socket.onmessage = (e) => {
        if (typeof e.data === "string") {
          log.warn(
            `websocket client ${remoteAddress} sent a text frame; closing (MQTT needs binary)`,
          );
          try {
            socket.close(1003, "MQTT over WebSocket uses binary frames");
          } catch {
            // closing anyway
          }
          try {
            ctrl.close();
          } catch {
            // already closed
          }
          return;
        }
        ctrl.enqueue(new Uint8Array(e.data as ArrayBuffer));
      };
      socket.onclose = () => {
        try {
          ctrl.close();
        } catch {
          // already closed or errored
        }
      };
      socket.onerror = () => {};
    },
    cancel: close,
  });
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (socket.readyState !== WebSocket.OPEN) throw new Error("websocket is not open");
      socket.send(chunk);
      while (socket.bufferedAmount > HIGH_WATER && socket.readyState === WebSocket.OPEN) {
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close,
    abort: close,
  });
  return { readable, writable, remoteAddress, transport, close };
}

export function listenWebSocket(
  opts: { hostname: string; port: number; path: string; tls?: { cert: string; key: string } },
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Listening {
  const transport = opts.tls ? "wss" : "ws";
  const server = Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    onListen: () => {},
    ...(opts.tls ?? {}),
  }, (req, info) => {
    const url = new URL(req.url);
    if (url.pathname !== opts.path) {
      return new Response(`Not found. MQTT over WebSocket is served at ${opts.path}\n`, {
        status: 404,
      });
    }
    if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
      return new Response(
        "This is an MQTT over WebSocket endpoint: connect with a WebSocket MQTT client " +
          `(subprotocol ${MQTT_SUBPROTOCOLS.join(", ")}).\n`,
        { status: 426, headers: { upgrade: "websocket" } },
      );
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "")
      .split(",").map((s) => s.trim()).filter(Boolean);
    const chosen = MQTT_SUBPROTOCOLS.find((p) => offered.includes(p));
    if (offered.length > 0 && !chosen) {
      return new Response(`Unsupported subprotocol; use one of ${MQTT_SUBPROTOCOLS.join(", ")}\n`, {
        status: 400,
      });
    }
    const { socket, response } = Deno.upgradeWebSocket(req, chosen ? { protocol: chosen } : {});
    const addr = info.remoteAddr as Deno.NetAddr;
    socket.onopen = () => {
      onConnection(fromWebSocket(socket, `${addr.hostname}:${addr.port}`, transport, log));
    };
    return response;
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    address: `${addr.hostname}:${addr.port}`,
    port: addr.port,
    close() {
      server.shutdown().catch(() => {});
    },
  };
}
