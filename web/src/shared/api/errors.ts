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
  | "network" | "quota" | "throttled" | "unavailable" | "notConfigured" | "refused" | "signIn" | "tooLong"
  | "tooComplex" | "budget" | "invalid" | "staleCursor" | "notFound" | "outdatedApp" | "conflict"
  | "connectionClosed" | "unknown";

/** Whether a VALIDATION_ERROR is about a text over its length (`details[].type == "string_too_long"`). */
function tooLong(error: ApiError): boolean {
  return error.details.some((d) => typeof d === "object" && d !== null
    && (d as { type?: unknown }).type === "string_too_long");
}

export function errorKind(error: unknown): ErrorKind {
  if (!(error instanceof ApiError)) return error instanceof TypeError ? "network" : "unknown";
  if (error.status === 0) return "network";
  switch (error.code) {
    case "QUOTA_EXCEEDED":
    case "API_QUOTA_EXCEEDED":
      return "quota";
    case "THROTTLED":
      return "throttled";
    case "AI_NOT_CONFIGURED":
      return "notConfigured";
    case "AI_REFUSED":
      return "refused";
    case "PAYLOAD_TOO_LARGE":
      return "tooLong";
    case "JSON_TOO_COMPLEX":
      return "tooComplex";
    case "PROMPT_BUDGET_EXCEEDED":
      return "budget";
    case "INVALID_CURSOR":
      return "staleCursor";
    case "ROUTE_NOT_FOUND":
      return "outdatedApp";
    case "CONNECTION_CLOSED":
      return "connectionClosed";
    case "VALIDATION_ERROR":
      return tooLong(error) ? "tooLong" : "invalid";
    default:
      break;
  }
  if (error.status === 429) return "throttled";
  if (error.status === 503 || error.status === 502 || error.status === 504) return "unavailable";
  if (error.status === 401) return "signIn";
  if (error.status === 413) return "tooLong";
  if (error.status === 404) return "notFound";
  if (error.status === 409) return "conflict";
  if (error.status === 400 || error.status === 422 || error.status === 415) return "invalid";
  return "unknown";
}

/** The HTTP status a WebSocket error code has over REST (the WebSocket sends only the body). */
const SOCKET_STATUS: Record<string, number> = {
  MALFORMED_JSON: 400, JSON_TOO_COMPLEX: 400, VALIDATION_ERROR: 422, UNAUTHORIZED: 401, NOT_FOUND: 404,
  CONFLICT: 409, PROMPT_BUDGET_EXCEEDED: 422, QUOTA_EXCEEDED: 429, THROTTLED: 429, AI_REFUSED: 422,
  AI_OUTPUT_INVALID: 502, AI_UNAVAILABLE: 503, AI_NOT_CONFIGURED: 503, SERVICE_UNAVAILABLE: 503,
  CONNECTION_CLOSED: 499, INTERNAL_ERROR: 500, SIGN_IN_REQUIRED: 401, BAD_RESULT: 502,
};

/** A WebSocket `error` message as the ApiError the same failure would be over REST. */
export function fromSocketError(error: { code: string; message: string; details?: unknown[] }): ApiError {
  return new ApiError(SOCKET_STATUS[error.code] ?? 500, error.code, error.message, error.details ?? []);
}

/** When a quota resets (details[0].resetsAt of a QUOTA_EXCEEDED), if the server said. */
export function resetsAt(error: unknown): Date | null {
  if (!(error instanceof ApiError)) return null;
  const first = error.details[0] as { resetsAt?: unknown } | undefined;
  const when = typeof first?.resetsAt === "string" ? new Date(first.resetsAt) : null;
  return when && !Number.isNaN(when.getTime()) ? when : null;
}

/** The sizes a PROMPT_BUDGET_EXCEEDED names (details[0]), if it does. */
export function budgetDetails(error: unknown): { usedBytes: number; limitBytes: number } | null {
  if (!(error instanceof ApiError)) return null;
  const first = error.details[0] as { usedBytes?: unknown; limitBytes?: unknown } | undefined;
  return typeof first?.usedBytes === "number" && typeof first.limitBytes === "number"
    ? { usedBytes: first.usedBytes, limitBytes: first.limitBytes } : null;
}
