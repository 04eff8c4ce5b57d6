import { afterEach, describe, expect, it } from "vitest";
import { createApi, setApi } from "../shared/api/client";
import type { Auth } from "../shared/auth/auth";
import { parseConfig } from "../shared/config";
import { INLINE_MAX_BYTES, restTransport, uploadRecording } from "./transport";

const device: Auth = {
  mode: "device", signedIn: () => true, headers: async () => ({ "X-Device-Id": "device-0001" }),
  socketQuery: async () => ({ deviceId: "device-0001" }), signIn: async () => undefined, signOut: () => undefined,
};
const config = parseConfig({ apiUrl: "https://api.example/dev", webSocketUrl: "wss://ws.example/dev" });

/** The API: a handler per "METHOD /path" answering JSON. */
function fakeApi(routes: Record<string, (body: unknown) => [number, unknown]>) {
  const seen: { route: string; body: unknown }[] = [];
  setApi(createApi(config, device, async (request: Request) => {
    const route = `${request.method} ${new URL(request.url).pathname.replace("/dev", "")}`;
    const text = await request.text();
    const body = text ? JSON.parse(text) as unknown : undefined;
    seen.push({ route, body });
    const handler = routes[route];
    if (!handler) return new Response(JSON.stringify({ error: { code: "ROUTE_NOT_FOUND", message: route, details: [] } }), { status: 404 });
    const [status, answer] = handler(body);
    return new Response(JSON.stringify(answer), { status, headers: { "Content-Type": "application/json" } });
  }));
  return seen;
}

const UPLOAD = {
  transcriptionId: "T1", uploadUrl: "https://audio.example/", method: "POST", fileField: "file", contentType: "audio/webm",
  minBytes: 1, maxBytes: 10, expiresAt: "2026-12-01T09:05:00Z",
  fields: { "Content-Type": "audio/webm", key: "uploads/DEVICE/x/T1.webm", policy: "p", "x-amz-signature": "s" },
};

afterEach(() => setApi(null as never));

describe("a recording sent to storage through the presigned POST form", () => {
  it("asks for a policy of the recording's size, then posts every field in order and the file last", async () => {
    const seen = fakeApi({ "POST /transcriptions/upload-url": () => [201, UPLOAD] });
    const posted: { url: string; method: string; form: [string, FormDataEntryValue][] }[] = [];
    const storage = async (url: string | URL | Request, init?: RequestInit) => {
      posted.push({ url: String(url), method: init!.method!, form: [...(init!.body as FormData).entries()] });
      return new Response(null, { status: 204 });
    };
    const blob = new Blob(["0123456789"], { type: "audio/webm" });
    const started = await uploadRecording("S1", { blob, format: "webm", seconds: 1 }, undefined, storage as typeof fetch);
    expect(started).toEqual({ transcriptionId: "T1", status: "queued" });
    expect(seen[0]!.body).toEqual({ format: "webm", sizeBytes: 10, sessionId: "S1", language: "en-US" });
    expect(posted[0]!.url).toBe("https://audio.example/");
    expect(posted[0]!.method).toBe("POST");
    expect(posted[0]!.form.map(([name]) => name)).toEqual(["Content-Type", "key", "policy", "x-amz-signature", "file"]);
    expect(await (posted[0]!.form[4]![1] as File).text()).toBe("0123456789");
  });

  it("reports storage's refusal (a file larger than the policy allows) as a failed upload", async () => {
    fakeApi({ "POST /transcriptions/upload-url": () => [201, UPLOAD] });
    const storage = async () => new Response("<Error><Code>EntityTooLarge</Code></Error>", { status: 400 });
    const error = await uploadRecording("S1", { blob: new Blob(["x"]), format: "webm", seconds: 1 }, undefined,
      storage as typeof fetch).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400, code: "UPLOAD_FAILED" });
  });

  it("sends small recordings inline, large ones through the form", async () => {
    const seen = fakeApi({
      "POST /transcriptions": () => [202, { transcriptionId: "T2", status: "completed", text: " I like tea. " }],
    });
    const text = await restTransport.transcribe("S1", { blob: new Blob(["abc"]), format: "webm", seconds: 1 });
    expect(text).toBe("I like tea.");
    expect(seen[0]).toMatchObject({ route: "POST /transcriptions", body: { audio: "YWJj", format: "webm", sessionId: "S1" } });

    const big = fakeApi({ "POST /transcriptions/upload-url": () => [429, { error: { code: "QUOTA_EXCEEDED", message: "q", details: [] } }] });
    const error = await restTransport.transcribe("S1", { blob: new Blob([new Uint8Array(INLINE_MAX_BYTES + 1)]),
      format: "webm", seconds: 1 }).catch((e: unknown) => e);
    expect(big.map((s) => s.route)).toEqual(["POST /transcriptions/upload-url"]);
    expect(error).toMatchObject({ code: "QUOTA_EXCEEDED" });
  });
});

describe("the tutor's voice", () => {
  it("says which voice spoke, and why when it is not the gender asked for", async () => {
    fakeApi({ "POST /speech": () => [200, { audio: "SUQz", contentType: "audio/mpeg", voice: "Kajal", voiceGender: "female",
      voiceNote: "Polly has no English (Indian) male voice; Kajal (female) spoke in the same accent instead.",
      engine: "neural", languageCode: "en-IN", characters: 2 }] });
    const voice = await restTransport.voice("Hi", "IN", "male");
    expect(voice).toMatchObject({ src: "data:audio/mpeg;base64,SUQz", voice: "Kajal", voiceGender: "female" });
    expect(voice.voiceNote).toMatch(/no English \(Indian\) male voice/);
  });
});

describe("a reply's translation", () => {
  it("is unavailable only when the API says so", async () => {
    const { translationUnavailable } = await import("./transport");
    expect(translationUnavailable({ translation: { language: "ko", available: false, reason: "offline" } })).toBe(true);
    expect(translationUnavailable({ translation: { language: "ko", available: true, text: "안녕" } })).toBe(false);
    expect(translationUnavailable({ translation: null })).toBe(false);
    expect(translationUnavailable({ reply: "Hi" })).toBe(false);
  });
});
