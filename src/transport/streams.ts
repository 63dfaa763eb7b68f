/** WHATWG streams over the raw path, for the wrappers that need streams. */
import type { RawIo } from "../broker/ports/connection.ts";

/**
 * WHATWG streams over a connection's raw path, for the wrappers that need them (built on
 * demand: the core itself never asks). Reading starts when the stream is created.
 */
export function rawReadable(io: RawIo, close: () => void): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      io.start({
        onData(chunk) {
          ctrl.enqueue(chunk);
          if ((ctrl.desiredSize ?? 1) <= 0) io.pause();
        },
        onEnd(err) {
          try {
            if (err) ctrl.error(err);
            else ctrl.close();
          } catch {
            // already cancelled
          }
        },
      });
    },
    pull: () => io.resume(),
    cancel: close,
  }, new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }));
}

export function rawWritable(io: RawIo, close: () => void): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write: (chunk) => io.write(chunk),
    close,
    abort: close,
  });
}
