/** A node:net / node:tls socket adapted to ByteConnection, with backpressure both ways. */
import type { Socket } from "node:net";
import type { ByteConnection } from "./connection.ts";

/** Bytes read ahead of the broker before the socket is paused. */
const READ_HIGH_WATER = 64 * 1024;

export function fromNodeSocket(
  socket: Socket,
  remoteAddress: string,
  transport: string,
  extra: { peerCertificateCN?: string } = {},
): ByteConnection {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    socket.destroy();
  };
  const readable = new ReadableStream<Uint8Array>({
    start(ctrl) {
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        try {
          if (err) ctrl.error(err);
          else ctrl.close();
        } catch {
          // already closed or cancelled
        }
      };
      socket.on("data", (chunk: Uint8Array) => {
        if (ended) return;
        // node hands out a fresh buffer per read, so the decoder may keep views into it.
        ctrl.enqueue(chunk);
        if ((ctrl.desiredSize ?? 1) <= 0) socket.pause();
      });
      socket.on("end", () => end());
      socket.on("close", () => end());
      socket.on("error", (err: Error) => end(err));
    },
    pull() {
      if (!closed && socket.isPaused()) socket.resume();
    },
    cancel: close,
  }, new ByteLengthQueuingStrategy({ highWaterMark: READ_HIGH_WATER }));
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (closed || socket.destroyed) return Promise.reject(new Error("socket is closed"));
      if (socket.write(chunk)) return;
      return new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          socket.off("drain", onDrain);
          socket.off("close", onClose);
          socket.off("error", onError);
          if (err) reject(err);
          else resolve();
        };
        const onDrain = () => done();
        const onClose = () => done(new Error("socket closed while writing"));
        const onError = (err: Error) => done(err);
        socket.on("drain", onDrain);
        socket.on("close", onClose);
        socket.on("error", onError);
      });
    },
    close() {
      socket.end();
    },
    abort: close,
  });
  return { readable, writable, remoteAddress, transport, close, ...extra };
}
