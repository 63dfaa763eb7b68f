import type { ByteConnection, RawIo } from "./ports/connection.ts";

/** A RawIo over the WHATWG streams of a connection without a raw path (WebSocket, wrappers). */
export function streamRawIo(conn: ByteConnection): RawIo {
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let paused = false;
  let wake: (() => void) | null = null;
  return {
    start(sink) {
      const reader = conn.readable.getReader();
      (async () => {
        try {
          while (true) {
            if (paused) await new Promise<void>((r) => (wake = r));
            const { value, done } = await reader.read();
            if (done) break;
            sink.onData(value);
          }
          sink.onEnd();
        } catch (err) {
          sink.onEnd(err instanceof Error ? err : new Error(String(err)));
        } finally {
          reader.releaseLock();
        }
      })();
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      const w = wake;
      wake = null;
      w?.();
    },
    write(bytes) {
      if (!writer) {
        writer = conn.writable.getWriter();
        // Swallow the rejection of `closed` so an aborted connection is not an unhandled error.
        writer.closed.catch(() => {});
      }
      return writer.write(bytes);
    },
  };
}
