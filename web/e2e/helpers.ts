import { expect, type Page } from "@playwright/test";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const web = () => process.env.PARLEY_WEB_URL!;
export const apiUrl = () => process.env.PARLEY_API_URL!;

/** A device of its own for each test (device sign-in), so tests never see each other's data. */
export async function asNewDevice(page: Page, lang: "en" | "ko" = "en"): Promise<string> {
  const device = `e2e-${randomUUID()}`;
  await page.addInitScript(([id, l]) => {
    if (!localStorage.getItem("parley.deviceId")) localStorage.setItem("parley.deviceId", id!);
    if (!localStorage.getItem("parley.lang")) localStorage.setItem("parley.lang", l!);
  }, [device, lang]);
  return device;
}

/** A screenshot of the screen as it is now, kept as a test artifact (never committed). */
export async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: path.join(here, "artifacts", "screenshots", `${name}.png`), fullPage });
}

/** axe-core on the page: no serious or critical violations. */
export async function expectAccessible(page: Page, screen: string): Promise<void> {
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    // @ts-expect-error axe is the script just added
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return (result.violations as { id: string; impact: string; nodes: { target: string[] }[] }[])
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  expect(violations, `axe on ${screen}`).toEqual([]);
}

/** The API, called directly as the same device (to prepare or check what the browser did). */
export async function callApi(device: string, method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`${apiUrl()}${route}`, {
    method, headers: { "X-Device-Id": device, "Content-Type": "application/json", Origin: web() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A DynamoDB call to the emulator (moto), as an operator would make with the AWS CLI. */
export async function dynamodb(target: string, body: unknown, moto = process.env.PARLEY_MOTO_URL!): Promise<unknown> {
  const response = await fetch(moto, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": `DynamoDB_20120810.${target}`,
      Authorization: "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: JSON.stringify(body),
  });
  expect(response.ok, await response.clone().text()).toBe(true);
  return response.json();
}

/** The stack's table (the one the template names parley-<stage>-…). */
export async function tableName(moto = process.env.PARLEY_MOTO_URL!): Promise<string> {
  const tables = await dynamodb("ListTables", {}, moto) as { TableNames: string[] };
  return tables.TableNames.find((name) => name.startsWith("parley-"))!;
}

/** The local stack's test hook: cut the open WebSocket connections (after n more frames). */
export async function dropConnections(afterFrames?: number, callbacks = process.env.PARLEY_WS_CALLBACKS!): Promise<void> {
  const response = await fetch(`${callbacks}/@local/drop`, {
    method: "POST", body: JSON.stringify(afterFrames ? { afterFrames } : {}),
  });
  expect(response.ok).toBe(true);
}

/** The duration of an <audio> element's media once it has loaded (NaN if it cannot be decoded). */
export async function audioDuration(page: Page, index: number): Promise<number> {
  return page.locator("audio").nth(index).evaluate((el: HTMLAudioElement) => new Promise<number>((resolve) => {
    if (el.readyState >= 1) resolve(el.duration);
    else {
      el.addEventListener("loadedmetadata", () => resolve(el.duration), { once: true });
      el.addEventListener("error", () => resolve(Number.NaN), { once: true });
    }
  }));
}

/** Whether an <audio> element is playing, or has played (auto-play respected, or not). */
export async function audioPlayed(page: Page, index: number): Promise<boolean> {
  return page.locator("audio").nth(index).evaluate((el: HTMLAudioElement) => !el.paused || el.currentTime > 0 || el.ended);
}

/** The words of a sentence, as the backend's speech tests count them (letters and apostrophes). */
function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z']+/g) ?? [];
}

/** Word error rate: (substitutions + deletions + insertions) / reference words (Levenshtein over words). */
export function wordErrorRate(reference: string, hypothesis: string): number {
  const ref = words(reference);
  const hyp = words(hypothesis);
  let previous = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  ref.forEach((r, i) => {
    const current = [i + 1];
    hyp.forEach((h, j) => current.push(Math.min(previous[j + 1]! + 1, current[j]! + 1, previous[j]! + (r === h ? 0 : 1))));
    previous = current;
  });
  return previous[hyp.length]! / Math.max(1, ref.length);
}

/** Record every play() of any audio on the page (an <audio> element's or a sentence's new Audio()). */
export async function recordPlays(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const plays: string[] = [];
    (window as unknown as { __plays: string[] }).__plays = plays;
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function (this: HTMLMediaElement) {
      plays.push(this.src);
      return play.call(this);
    };
  });
}

/** The sources played since recordPlays(), in order. */
export async function plays(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __plays?: string[] }).__plays ?? []);
}

/** Keep the app's WebSocket down (the streamed tutor turn then goes over REST); the transcription's stays. */
export async function appSocketDown(page: Page): Promise<void> {
  await page.routeWebSocket((url) => !url.pathname.startsWith("/stream-transcription"), (ws) => ws.close({ code: 1011 }));
}
