import { beforeEach, describe, expect, it } from "vitest";
import { authorizeUrl, completeSignIn } from "./cognito";
import { deviceId } from "./device";
import { challengeFor } from "./pkce";

describe("PKCE", () => {
  it("derives the S256 challenge of RFC 7636's example", async () => {
    expect(await challengeFor("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
      .toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  });
});

describe("Cognito sign-in", () => {
  const settings = { domain: "login.example.com", clientId: "client-1" };
  beforeEach(() => {
    sessionStorage.clear();
    localStorage.clear();
  });

  it("sends the browser to managed login with a code challenge and a state", async () => {
    const url = new URL(await authorizeUrl(settings, "/proofread"));
    expect(url.origin + url.pathname).toBe("https://login.example.com/oauth2/authorize");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: "code", client_id: "client-1", code_challenge_method: "S256", scope: "openid email",
      redirect_uri: `${location.origin}/auth/callback`,
    });
    expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get("state")).toBeTruthy();
  });

  it("refuses a callback whose state is not the one it sent", async () => {
    await authorizeUrl(settings, "/");
    await expect(completeSignIn(settings, "?code=abc&state=forged")).rejects.toThrow(/could not be verified/);
  });
});

describe("device sign-in", () => {
  it("makes a device id once and keeps it", () => {
    localStorage.clear();
    const first = deviceId();
    expect(first).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(deviceId()).toBe(first);
  });
});
