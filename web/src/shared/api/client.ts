/** The typed API client: paths and bodies come from openapi.json (schema.d.ts is generated from
 * it at build time, so a changed route breaks the build, not the learner). */

import createClient, { type Client } from "openapi-fetch";
import type { Auth } from "../auth/auth";
import type { AppConfig } from "../config";
import { ApiError } from "./errors";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type ApiClient = Client<paths>;

export class SignInRequired extends ApiError {
  constructor() {
    super(401, "SIGN_IN_REQUIRED", "Sign in to continue.");
  }
}

export function createApi(config: AppConfig, auth: Auth, fetcher?: (r: Request) => Promise<Response>): ApiClient {
  const client = createClient<paths>({ baseUrl: config.apiUrl, fetch: fetcher });
  client.use({
    async onRequest({ request }) {
      const headers = await auth.headers();
      if (!headers) throw new SignInRequired();
      for (const [key, value] of Object.entries(headers)) request.headers.set(key, value);
      if (config.apiKey) request.headers.set("X-Api-Key", config.apiKey);
      return request;
    },
    onError({ error }) {
      // fetch itself failed: offline, DNS, CORS refused, the server unreachable.
      if (error instanceof ApiError) return error;
      return ApiError.network(error);
    },
  });
  return client;
}

/** The data of an answer, or the API's error as an ApiError (thrown). */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (error) {
    throw error instanceof ApiError ? error : ApiError.network(error);
  }
  if (!result.response.ok) throw await ApiError.from(result.response, result.error);
  return result.data as T;
}

let current: ApiClient | null = null;

/** The app's client, set once the config is loaded (tests set their own). */
export function api(): ApiClient {
  if (!current) throw new Error("The API client is not set up yet");
  return current;
}

export function setApi(client: ApiClient): void {
  current = client;
}
