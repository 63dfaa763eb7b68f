/**
 * JSON in and out of the HTTP API: answers with the right content type, request bodies parsed
 * and checked field by field, and ApiError for a clear 4xx that names what is wrong.
 */
import type { HttpRequest, HttpResponse } from "./server.ts";

/** A request the API refuses: answered `status` with `{"error": message}`. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A JSON answer. */
export function json(status: number, value: unknown, audit?: string): HttpResponse {
  return {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
    body: JSON.stringify(value),
    ...(audit !== undefined ? { audit } : {}),
  };
}

/** The body as a JSON object; 400 when it is missing, not JSON, or not an object. */
export function readObject(req: HttpRequest): Record<string, unknown> {
  if (req.body.byteLength === 0) throw new ApiError(400, "a JSON object body is required");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(req.body);
  } catch {
    throw new ApiError(400, "the body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `the body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Field readers that name the field in their 400. */
export const field = {
  string(o: Record<string, unknown>, name: string, required = false): string | undefined {
    const v = o[name];
    if (v === undefined || v === null) {
      if (required) throw new ApiError(400, `"${name}" is required`);
      return undefined;
    }
    if (typeof v !== "string") throw new ApiError(400, `"${name}" must be a string`);
    return v;
  },
  bool(o: Record<string, unknown>, name: string): boolean | undefined {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") throw new ApiError(400, `"${name}" must be true or false`);
    return v;
  },
  int(o: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw new ApiError(400, `"${name}" must be an integer from ${min} to ${max}`);
    }
    return v;
  },
};

/** A query parameter as an integer in range, or `dflt`; 400 otherwise. */
export function queryInt(
  q: URLSearchParams,
  name: string,
  dflt: number,
  min: number,
  max: number,
): number {
  const v = q.get(name);
  if (v === null || v === "") return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ApiError(400, `query parameter "${name}" must be an integer from ${min} to ${max}`);
  }
  return Number(v);
}

/** One page of `items` per `limit` and `offset` (query parameters). */
export function page<T>(q: URLSearchParams, items: T[]): { total: number; items: T[] } {
  const limit = queryInt(q, "limit", 50, 1, 1000);
  const offset = queryInt(q, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
  return { total: items.length, items: items.slice(offset, offset + limit) };
}
