/** The API's one error body, and what a learner is told about each kind of failure. */

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown[] };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown[] = [],
    /** seconds, from Retry-After */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  static network(cause?: unknown): ApiError {
    const error = new ApiError(0, "NETWORK", "The network request failed.");
    error.cause = cause;
    return error;
  }

  static async from(response: Response, body?: unknown): Promise<ApiError> {
    let parsed = body;
    if (parsed === undefined) {
      try {
        parsed = await response.clone().json();
      } catch {
        parsed = undefined;
      }
    }
    const e = (parsed as Partial<ErrorBody> | undefined)?.error;
    const retry = Number(response.headers.get("Retry-After"));
    return new ApiError(
      response.status,
      typeof e?.code === "string" ? e.code : `HTTP_${response.status}`,
      typeof e?.message === "string" ? e.message : response.statusText || "Request failed",
      Array.isArray(e?.details) ? e.details : [],
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  }
}

/** The kinds of failure the interface explains differently. */
export type ErrorKind =
  | "network" | "quota" | "throttled" | "unavailable" | "signIn" | "tooLong" | "invalid" | "notFound"
  | "conflict" | "unknown";

export function errorKind(error: unknown): ErrorKind {
  if (!(error instanceof ApiError)) return error instanceof TypeError ? "network" : "unknown";
  if (error.status === 0) return "network";
  if (error.code === "QUOTA_EXCEEDED" || error.code === "API_QUOTA_EXCEEDED") return "quota";
  if (error.status === 429) return "throttled";
  if (error.status === 503 || error.status === 502 || error.status === 504) return "unavailable";
  if (error.status === 401) return "signIn";
  if (error.status === 413 || error.code === "TEXT_TOO_LONG" || error.code === "PAYLOAD_TOO_LARGE") return "tooLong";
  if (error.status === 404) return "notFound";
  if (error.status === 409) return "conflict";
  if (error.status === 400 || error.status === 422 || error.status === 415) return "invalid";
  return "unknown";
}

/** When a quota resets (details[0].resetsAt of a QUOTA_EXCEEDED), if the server said. */
export function resetsAt(error: unknown): Date | null {
  if (!(error instanceof ApiError)) return null;
  const first = error.details[0] as { resetsAt?: unknown } | undefined;
  const when = typeof first?.resetsAt === "string" ? new Date(first.resetsAt) : null;
  return when && !Number.isNaN(when.getTime()) ? when : null;
}
