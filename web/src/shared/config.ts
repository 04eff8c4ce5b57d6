/** The deployment's runtime settings, read from /config.json at start (never compiled in). */

export type AuthConfig =
  | { mode: "device" }
  | {
      mode: "cognito";
      /** The user pool's managed-login domain, e.g. "parley-prod.auth.us-east-1.amazoncognito.com". */
      domain: string;
      clientId: string;
      scopes?: string[];
    };

export interface AppConfig {
  /** The REST API's base URL (a stage URL in AWS), without a trailing slash. */
  apiUrl: string;
  /** The WebSocket API's URL (wss://… in AWS). */
  webSocketUrl: string;
  /** The client app's API key (X-Api-Key) where the API requires one. */
  apiKey?: string;
  auth: AuthConfig;
  stage?: string;
  /** Seconds between heartbeats on an idle WebSocket (API Gateway closes after 600 s idle). */
  heartbeatSeconds?: number;
}

export class ConfigError extends Error {}

function text(value: unknown, field: string): string {
  if (typeof value !== "string" || value.trim() === "") throw new ConfigError(`config.json: "${field}" is missing`);
  return value.replace(/\/+$/, "");
}

/** Check the shape of a parsed config.json; throws ConfigError naming the first problem. */
export function parseConfig(raw: unknown): AppConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("config.json is not a JSON object");
  const c = raw as Record<string, unknown>;
  const auth = (c.auth ?? { mode: "device" }) as Record<string, unknown>;
  let parsedAuth: AuthConfig;
  if (auth.mode === "device") parsedAuth = { mode: "device" };
  else if (auth.mode === "cognito") {
    parsedAuth = {
      mode: "cognito",
      domain: text(auth.domain, "auth.domain").replace(/^https:\/\//, ""),
      clientId: text(auth.clientId, "auth.clientId"),
      scopes: Array.isArray(auth.scopes) ? auth.scopes.map(String) : ["openid", "email"],
    };
  } else throw new ConfigError(`config.json: auth.mode must be "device" or "cognito"`);
  const heartbeat = Number(c.heartbeatSeconds ?? 300);
  return {
    apiUrl: text(c.apiUrl, "apiUrl"),
    webSocketUrl: text(c.webSocketUrl, "webSocketUrl"),
    apiKey: typeof c.apiKey === "string" && c.apiKey ? c.apiKey : undefined,
    auth: parsedAuth,
    stage: typeof c.stage === "string" ? c.stage : undefined,
    heartbeatSeconds: Number.isFinite(heartbeat) && heartbeat > 0 ? heartbeat : 300,
  };
}

export async function loadConfig(fetcher: typeof fetch = fetch): Promise<AppConfig> {
  const response = await fetcher("/config.json", { cache: "no-store" });
  if (!response.ok) throw new ConfigError(`config.json could not be loaded (HTTP ${response.status})`);
  return parseConfig(await response.json());
}
