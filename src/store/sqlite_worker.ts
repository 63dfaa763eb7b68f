/**
 * Worker that owns the store's SQLite connection, so that fsync and large loads block this
 * thread instead of the one serving sockets. Requests are handled strictly in arrival order:
 * a load posted after a commit sees that commit.
 */
import { Handler, type Request, type Response } from "./sqlite_protocol.ts";
import { startIdleGc } from "../idle_gc.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<Request>) => void) | null;
  postMessage(msg: Response): void;
}

const scope = globalThis as unknown as WorkerScope;
const handler = new Handler();
// Every commit leaves its deserialized batch behind as garbage, which an idle worker would keep.
startIdleGc();

scope.onmessage = (e) => {
  const { id, ...call } = e.data;
  let res: Response;
  try {
    res = { id, ok: true, value: handler.handle(call as Request) };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    const code = (error as { code?: unknown }).code;
    res = {
      id,
      ok: false,
      message: error.message,
      code: typeof code === "string" ? code : undefined,
    };
  }
  scope.postMessage(res);
};
