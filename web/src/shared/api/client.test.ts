import { describe, expect, it } from "vitest";
import type { Auth } from "../auth/auth";
import { parseConfig } from "../config";
import { createApi, unwrap } from "./client";
import { ApiError, budgetDetails, errorKind, fromSocketError, resetsAt } from "./errors";

const config = parseConfig({ apiUrl: "https://api.example/dev/", webSocketUrl: "wss://ws.example/dev", apiKey: "k-1" });
const device: Auth = {
  mode: "device", signedIn: () => true, headers: async () => ({ "X-Device-Id": "device-0001" }),
  socketQuery: async () => ({ deviceId: "device-0001" }), signIn: async () => undefined, signOut: () => undefined,
};

function fake(status: number, body: unknown, headers: Record<string, string> = {}) {
  const seen: Request[] = [];
  const fetcher = async (request: Request) => {
    seen.push(request);
    return new Response(body === undefined ? null : JSON.stringify(body),
      { status, headers: { "Content-Type": "application/json", ...headers } });
  };
  return { seen, fetcher };
}

describe("the API client", () => {
  it("sends the owner's credentials and the app's key to the configured API", async () => {
    const { seen, fetcher } = fake(200, { accent: "UK" });
    const data = await unwrap(createApi(config, device, fetcher).GET("/settings"));
    expect(data).toEqual({ accent: "UK" });
    expect(seen[0]!.url).toBe("https://api.example/dev/settings");
    expect(seen[0]!.headers.get("X-Device-Id")).toBe("device-0001");
    expect(seen[0]!.headers.get("X-Api-Key")).toBe("k-1");
  });

  it("turns the API's error body into an ApiError with its code, details and Retry-After", async () => {
    const body = { error: { code: "QUOTA_EXCEEDED", message: "Monthly quota reached",
      details: [{ limit: "monthlyCostUsd", resetsAt: "2026-12-01T00:00:00Z" }] } };
    const { fetcher } = fake(429, body, { "Retry-After": "3600" });
    const error = await unwrap(createApi(config, device, fetcher).GET("/usage")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, code: "QUOTA_EXCEEDED", retryAfter: 3600 });
    expect(errorKind(error)).toBe("quota");
    expect(resetsAt(error)?.toISOString()).toBe("2026-12-01T00:00:00.000Z");
  });

  it("reports a failed fetch as a network error", async () => {
    const fetcher = async () => {
      throw new TypeError("Failed to fetch");
    };
    const error = await unwrap(createApi(config, device, fetcher).GET("/settings")).catch((e: unknown) => e);
    expect(errorKind(error)).toBe("network");
  });

  it("does not call the API when a sign-in is needed", async () => {
    const { seen, fetcher } = fake(200, {});
    const signedOut: Auth = { ...device, mode: "cognito", signedIn: () => false, headers: async () => null };
    const error = await unwrap(createApi(config, signedOut, fetcher).GET("/settings")).catch((e: unknown) => e);
    expect(errorKind(error)).toBe("signIn");
    expect(seen).toHaveLength(0);
  });
});

describe("error kinds", () => {
  it.each([
    [new ApiError(503, "AI_UNAVAILABLE", ""), "unavailable"],
    [new ApiError(503, "SERVICE_UNAVAILABLE", ""), "unavailable"],
    [new ApiError(429, "THROTTLED", ""), "throttled"],
    [new ApiError(429, "API_QUOTA_EXCEEDED", ""), "quota"],
    [new ApiError(413, "PAYLOAD_TOO_LARGE", ""), "tooLong"],
    [new ApiError(422, "VALIDATION_ERROR", "", [{ field: "body.text", type: "string_too_long" }]), "tooLong"],
    [new ApiError(422, "VALIDATION_ERROR", "", [{ field: "body.accent", type: "literal_error" }]), "invalid"],
    [new ApiError(422, "VALIDATION_ERROR", ""), "invalid"],
    [new ApiError(400, "JSON_TOO_COMPLEX", "", [{ limit: "depth" }]), "tooComplex"],
    [new ApiError(400, "INVALID_CURSOR", ""), "staleCursor"],
    [new ApiError(404, "ROUTE_NOT_FOUND", ""), "outdatedApp"],
    [new ApiError(422, "AI_REFUSED", ""), "refused"],
    [new ApiError(503, "AI_NOT_CONFIGURED", ""), "notConfigured"],
    [new ApiError(422, "PROMPT_BUDGET_EXCEEDED", ""), "budget"],
    [new ApiError(404, "NOT_FOUND", ""), "notFound"],
    [new ApiError(409, "CONFLICT", ""), "conflict"],
    [new ApiError(401, "UNAUTHORIZED", ""), "signIn"],
    [ApiError.network(), "network"],
    [new Error("?"), "unknown"],
  ] as const)("%o is %s", (error, kind) => {
    expect(errorKind(error)).toBe(kind);
  });
});

describe("WebSocket errors", () => {
  it.each([
    ["NOT_FOUND", 404, "notFound"], ["THROTTLED", 429, "throttled"], ["QUOTA_EXCEEDED", 429, "quota"],
    ["AI_REFUSED", 422, "refused"], ["AI_NOT_CONFIGURED", 503, "notConfigured"], ["AI_UNAVAILABLE", 503, "unavailable"],
    ["SERVICE_UNAVAILABLE", 503, "unavailable"], ["CONNECTION_CLOSED", 499, "connectionClosed"],
    ["CONFLICT", 409, "conflict"], ["SOMETHING_NEW", 500, "unknown"],
  ] as const)("%s is explained as over REST (%i, %s)", (code, status, kind) => {
    const error = fromSocketError({ code, message: "m" });
    expect(error).toMatchObject({ status, code });
    expect(errorKind(error)).toBe(kind);
  });

  it("keeps a too-long text's details, so it reads as too long", () => {
    const error = fromSocketError({ code: "VALIDATION_ERROR", message: "m",
      details: [{ field: "text", message: "String should have at most 10000 characters", type: "string_too_long" }] });
    expect(errorKind(error)).toBe("tooLong");
  });

  it("reads the budget a PROMPT_BUDGET_EXCEEDED names", () => {
    const error = fromSocketError({ code: "PROMPT_BUDGET_EXCEEDED", message: "m",
      details: [{ limitBytes: 100000, usedBytes: 110000, systemPromptBytes: 10000, fileBytes: 100000 }] });
    expect(budgetDetails(error)).toEqual({ usedBytes: 110000, limitBytes: 100000 });
    expect(budgetDetails(new ApiError(422, "PROMPT_BUDGET_EXCEEDED", "m"))).toBeNull();
  });
});

describe("config.json", () => {
  it("accepts device and Cognito sign-in and trims trailing slashes", () => {
    expect(config.apiUrl).toBe("https://api.example/dev");
    expect(config.auth).toEqual({ mode: "device" });
    const cognito = parseConfig({ apiUrl: "a", webSocketUrl: "b",
      auth: { mode: "cognito", domain: "https://login.example", clientId: "c" } });
    expect(cognito.auth).toEqual({ mode: "cognito", domain: "login.example", clientId: "c", scopes: ["openid", "email"] });
  });

  it("names what is missing", () => {
    expect(() => parseConfig({ webSocketUrl: "b" })).toThrow(/apiUrl/);
    expect(() => parseConfig({ apiUrl: "a", webSocketUrl: "b", auth: { mode: "saml" } })).toThrow(/auth.mode/);
  });
});
