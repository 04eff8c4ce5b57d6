/** One interface over both sign-in modes: what to send to the REST API and to the WebSocket. */

import type { AuthConfig } from "../config";
import { accessToken, authorizeUrl, savedTokens, signOutUrl } from "./cognito";
import { deviceId } from "./device";

export interface Auth {
  mode: AuthConfig["mode"];
  /** Whether requests can be made now (device mode: always). */
  signedIn(): boolean;
  /** Headers for a REST call; null when a sign-in is needed. */
  headers(): Promise<Record<string, string> | null>;
  /** Query parameters for the WebSocket's $connect (browsers cannot set headers there). */
  socketQuery(): Promise<Record<string, string> | null>;
  signIn(returnTo: string): Promise<void>;
  signOut(): void;
}

export function createAuth(config: AuthConfig): Auth {
  if (config.mode === "device") {
    return {
      mode: "device",
      signedIn: () => true,
      headers: async () => ({ "X-Device-Id": deviceId() }),
      socketQuery: async () => ({ deviceId: deviceId() }),
      signIn: async () => undefined,
      signOut: () => undefined,
    };
  }
  return {
    mode: "cognito",
    signedIn: () => savedTokens() !== null,
    headers: async () => {
      const token = await accessToken(config);
      return token ? { Authorization: `Bearer ${token}` } : null;
    },
    socketQuery: async () => {
      const token = await accessToken(config);
      return token ? { token } : null;
    },
    signIn: async (returnTo) => {
      location.assign(await authorizeUrl(config, returnTo));
    },
    signOut: () => location.assign(signOutUrl(config)),
  };
}
