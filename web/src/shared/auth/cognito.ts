/** Cognito sign-in: managed login, code flow with PKCE, tokens refreshed with the refresh token. */

import { challengeFor, randomString } from "./pkce";

export interface CognitoSettings {
  domain: string;
  clientId: string;
  scopes?: string[];
}

export interface Tokens {
  accessToken: string;
  idToken: string;
  refreshToken?: string;
  /** epoch ms */
  expiresAt: number;
}

const TOKENS = "parley.tokens";
const PENDING = "parley.pkce";
export const CALLBACK_PATH = "/auth/callback";

export function redirectUri(origin = location.origin): string {
  return origin + CALLBACK_PATH;
}

export function savedTokens(storage: Storage = localStorage): Tokens | null {
  try {
    const t = JSON.parse(storage.getItem(TOKENS) ?? "null") as Tokens | null;
    return t && typeof t.accessToken === "string" ? t : null;
  } catch {
    return null;
  }
}

function save(tokens: Tokens | null, storage: Storage = localStorage): void {
  if (tokens) storage.setItem(TOKENS, JSON.stringify(tokens));
  else storage.removeItem(TOKENS);
}

/** Where to send the browser to sign in; remembers the verifier, state and page to come back to. */
export async function authorizeUrl(s: CognitoSettings, returnTo: string): Promise<string> {
  const verifier = randomString(48);
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: s.clientId,
    redirect_uri: redirectUri(),
    scope: (s.scopes ?? ["openid", "email"]).join(" "),
    state,
    code_challenge: await challengeFor(verifier),
    code_challenge_method: "S256",
  });
  return `https://${s.domain}/oauth2/authorize?${query}`;
}

async function tokenRequest(s: CognitoSettings, body: Record<string, string>): Promise<Tokens> {
  const response = await fetch(`https://${s.domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: s.clientId, ...body }),
  });
  if (!response.ok) throw new Error(`Sign-in failed (HTTP ${response.status})`);
  const t = (await response.json()) as {
    access_token: string; id_token: string; refresh_token?: string; expires_in: number;
  };
  return {
    accessToken: t.access_token,
    idToken: t.id_token,
    refreshToken: t.refresh_token ?? body.refresh_token,
    expiresAt: Date.now() + t.expires_in * 1000,
  };
}

/** The callback: check the state, trade the code (with the verifier) for tokens. Returns the page to go back to. */
export async function completeSignIn(s: CognitoSettings, search: string): Promise<string> {
  const params = new URLSearchParams(search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as
    | { verifier: string; state: string; returnTo: string } | null;
  sessionStorage.removeItem(PENDING);
  if (params.get("error")) throw new Error(params.get("error_description") ?? params.get("error") ?? "Sign-in failed");
  const code = params.get("code");
  if (!pending || !code || params.get("state") !== pending.state) throw new Error("Sign-in could not be verified; try again.");
  save(await tokenRequest(s, {
    grant_type: "authorization_code", code, code_verifier: pending.verifier, redirect_uri: redirectUri(),
  }));
  return pending.returnTo || "/";
}

/** A valid access token, refreshed when it expires within a minute; null when signed out. */
export async function accessToken(s: CognitoSettings): Promise<string | null> {
  const t = savedTokens();
  if (!t) return null;
  if (t.expiresAt - Date.now() > 60_000) return t.accessToken;
  if (!t.refreshToken) {
    save(null);
    return null;
  }
  try {
    const fresh = await tokenRequest(s, { grant_type: "refresh_token", refresh_token: t.refreshToken });
    save(fresh);
    return fresh.accessToken;
  } catch {
    save(null);
    return null;
  }
}

export function signOutUrl(s: CognitoSettings): string {
  save(null);
  const query = new URLSearchParams({ client_id: s.clientId, logout_uri: location.origin + "/" });
  return `https://${s.domain}/logout?${query}`;
}
