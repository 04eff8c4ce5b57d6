import { expect, test, type Page } from "@playwright/test";
import { asNewDevice, audioDuration, audioPlayed, callApi, expectAccessible, plays, recordPlays, shot, web, wordErrorRate } from "./helpers";

/** What the fake microphone says (e2e/fixtures/spoken-sentence.wav: 0.5 s of silence, ~3.4 s of
 * speech, 2.5 s of silence, then again from the start). */
const SPOKEN = "I went to the market yesterday and bought some apples.";
/** The most the local recogniser may get wrong, as the backend's speech tests allow. */
const WER_BOUND = 0.35;

const conversation = (page: Page) => page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
const yourTurn = (page: Page) => page.getByRole("status").filter({ hasText: "Your turn." });

/** Start a session and wait for the tutor's greeting, with its voice. */
async function startSession(page: Page) {
  await page.goto(`${web()}/practice`);
  await expect(page.getByRole("heading", { name: "Speaking practice" })).toBeVisible();
  await expectAccessible(page, "practice (start)");
  await page.getByRole("button", { name: "Start a session" }).click();
  await expect(conversation(page)).toHaveCount(1);
  await expect(yourTurn(page)).toBeVisible();
  await expect(page.locator("audio")).toHaveCount(1);
}

/** Press Talk, let the fake microphone say its sentence, press Stop in the silence after it: the
 * transcript becomes my turn. Returns what the page shows as my words. */
async function speakATurn(page: Page, turnsBefore: number) {
  const paths: string[] = [];
  const seen = (r: { url(): string; method(): string }) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith("/transcriptions")) paths.push(`${r.method()} ${path.replace(/\/[0-9A-Z]{20,}$/, "/{id}")}`);
  };
  page.on("request", seen);
  await page.getByRole("button", { name: "Talk" }).click();
  await expect(page.getByRole("button", { name: "Stop and send" })).toHaveAttribute("aria-pressed", "true");
  await expect(page.getByRole("timer", { name: "Recording time" })).toHaveText(/0:0[4-5]/, { timeout: 20_000 });
  await page.getByRole("button", { name: "Stop and send" }).click();
  await expect(page.getByRole("status").filter({ hasText: /Writing down what you said|Your tutor is thinking/ }))
    .toBeVisible();
  await expect(conversation(page)).toHaveCount(turnsBefore + 2, { timeout: 60_000 });
  const mine = conversation(page).nth(turnsBefore);
  await expect(mine).toHaveClass(/learner/);
  await expect(mine.getByText("spoken")).toBeVisible();
  page.off("request", seen);
  console.log(`transcription requests: ${paths.join(", ")}`);
  return (await mine.locator("p").first().innerText()).trim();
}

async function typeATurn(page: Page, text: string, turnsBefore: number) {
  await page.getByLabel("Or type your answer").fill(text);
  await page.getByLabel("Or type your answer").press("Enter");
  await expect(conversation(page)).toHaveCount(turnsBefore + 2);
  await expect(conversation(page).nth(turnsBefore)).toHaveText(new RegExp(text));
}

test("a whole practice session: spoken and typed turns, report, progress, history, delete", async ({ page }) => {
  await asNewDevice(page);
  await recordPlays(page);
  await startSession(page);
  expect(await audioDuration(page, 0), "the greeting's voice is real audio").toBeGreaterThan(0);

  const said = await speakATurn(page, 1);
  expect(wordErrorRate(SPOKEN, "I went to the market"), "the measure itself").toBeGreaterThan(WER_BOUND);
  expect(wordErrorRate(SPOKEN, said), `heard "${said}" for "${SPOKEN}"`).toBeLessThanOrEqual(WER_BOUND);
  const replySeconds = await audioDuration(page, 1);
  expect(replySeconds, "the tutor's reply is spoken").toBeGreaterThan(0);
  console.log(`heard "${said}": WER ${(wordErrorRate(SPOKEN, said) * 100).toFixed(0)} %; the reply's voice ${replySeconds.toFixed(2)} s`);
  // Auto-play (the default) plays the reply: its player over REST, its sentences one by one when streamed.
  await expect.poll(async () => (await plays(page)).length, { message: "auto-play plays the greeting and the reply" })
    .toBeGreaterThanOrEqual(2);

  await typeATurn(page, "I would like to travel to Busan next summer.", 3);
  // Another screen in the middle of a session: the session and the unsent words are there on return.
  await page.getByLabel("Or type your answer").fill("My favourite food is kimchi stew because it is warm.");
  await page.getByRole("navigation", { name: "Speaking practice" }).getByRole("link", { name: "Settings" }).click();
  await expect(page.getByLabel("Accent")).toHaveValue("US");
  await expect(page.getByLabel("Your language (for translations)"), "Korean by default").toHaveValue("ko");
  await page.getByRole("navigation", { name: "Speaking practice" }).getByRole("link", { name: "Session" }).click();
  await expect(conversation(page)).toHaveCount(5);
  await expect(page.getByLabel("Or type your answer")).toHaveValue("My favourite food is kimchi stew because it is warm.");
  await page.getByLabel("Or type your answer").press("Enter");
  await expect(conversation(page)).toHaveCount(7);
  await expect(page.locator("audio")).toHaveCount(4);
  await expectAccessible(page, "practice (session)");
  await shot(page, "practice-session");

  await page.getByRole("button", { name: "End session" }).click();
  await expect(page).toHaveURL(/\/practice\/report\//);
  const sessionId = page.url().split("/").pop()!;
  await expect(page.getByRole("heading", { name: "Session report" })).toBeVisible();
  for (const dimension of ["Complexity", "Accuracy", "Fluency", "Pronunciation"]) {
    await expect(page.getByRole("heading", { name: new RegExp(`^${dimension}: (\\d+ / 10|not measured)$`) }))
      .toBeVisible({ timeout: 60_000 });
  }
  await expect(page.getByRole("img", { name: "Scores (out of 10)" })).toBeVisible();
  await expectAccessible(page, "report");
  await shot(page, "practice-report");

  await page.getByRole("link", { name: "Progress" }).last().click();
  await expect(page.getByRole("img", { name: "Scores over your sessions" })).toBeVisible();
  await expect(page.getByRole("table", { name: "Scores by session" }).getByRole("row")).toHaveCount(2);
  await expectAccessible(page, "progress");
  await shot(page, "practice-progress");

  await page.getByRole("navigation", { name: "Speaking practice" }).getByRole("link", { name: "History" }).click();
  const entry = page.locator(`a[href="/practice/history/${sessionId}"]`);
  await expect(entry).toContainText("3 turns");
  await expectAccessible(page, "history");
  await entry.click();
  await expect(page.getByRole("heading", { name: "Script" })).toBeVisible();
  await expect(page.getByText("I would like to travel to Busan next summer.")).toBeVisible();
  await expectAccessible(page, "session script");
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Delete for good" }).click();
  await expect(page).toHaveURL(/\/practice\/history$/);
  await expect(page.getByText("No sessions yet.")).toBeVisible();
});

test("auto-play off: the tutor's voice waits for the learner to press play", async ({ page }) => {
  const device = await asNewDevice(page);
  expect((await callApi(device, "PUT", "/settings", { autoPlayVoice: false })).status).toBe(200);
  await startSession(page);
  expect(await audioDuration(page, 0)).toBeGreaterThan(0);
  expect(await audioPlayed(page, 0), "not played by itself").toBe(false);
  await page.locator("audio").first().evaluate((el: HTMLAudioElement) => el.play()); // the controls' play
  await expect.poll(() => audioPlayed(page, 0)).toBe(true);
});

test("settings: saved as chosen (your language included), and the voice previewed names the voice that spoke", async ({ page }) => {
  const device = await asNewDevice(page);
  await page.goto(`${web()}/practice/settings`);
  await page.getByLabel("Accent").selectOption("UK");
  await page.getByLabel("Your language (for translations)").selectOption({ label: "Japanese" });
  await page.getByLabel("Show translations").check();
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
  const saved = await (await callApi(device, "GET", "/settings")).json() as Record<string, unknown>;
  expect(saved).toMatchObject({ accent: "UK", nativeLanguage: "ja", showTranslation: true });
  await page.getByRole("button", { name: "Preview the voice" }).click();
  await expect(page.getByTestId("voice-used")).toContainText("Voice:");
  expect(await audioDuration(page, 0)).toBeGreaterThan(0);
});

test("a reload in the middle of a session: continue it, with the unsent words", async ({ page }) => {
  await asNewDevice(page);
  await startSession(page);
  await typeATurn(page, "I have two cats and a dog.", 1);
  await page.getByLabel("Or type your answer").fill("Their names are Mochi and Bori.");
  await page.reload();
  await page.getByRole("button", { name: "Continue the session" }).click();
  await expect(conversation(page)).toHaveCount(3);
  await expect(conversation(page).nth(1)).toHaveText(/I have two cats and a dog\./);
  await expect(page.getByLabel("Or type your answer")).toHaveValue("Their names are Mochi and Bori.");
  await page.getByLabel("Or type your answer").press("Enter");
  await expect(conversation(page)).toHaveCount(5);
});

test("history pages on: newest first, ten at a time", async ({ page }) => {
  const device = await asNewDevice(page);
  for (let i = 0; i < 11; i++) {
    const topic = i === 10 ? "travel" : "business"; // the newest is the only travel one
    expect((await callApi(device, "POST", "/sessions", { topic })).status).toBe(201);
  }
  await page.goto(`${web()}/practice/history`);
  const items = page.getByRole("main").getByRole("listitem");
  await expect(items).toHaveCount(10);
  await expect(items.first()).toContainText("Travel");
  await page.getByRole("button", { name: "Load more" }).click();
  await expect(items).toHaveCount(11);
  await expect(items.last()).toContainText("Business");
  await expect(page.getByRole("button", { name: "Load more" })).toHaveCount(0);
});

test.describe("on a phone", () => {
  test.use({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });

  test("the practice session works at 375 × 667 with large touch targets", async ({ page }) => {
    await asNewDevice(page);
    await startSession(page);
    expect(await audioDuration(page, 0)).toBeGreaterThan(0);
    const said = await speakATurn(page, 1);
    expect(wordErrorRate(SPOKEN, said), `heard "${said}"`).toBeLessThanOrEqual(WER_BOUND);
    await typeATurn(page, "I like walking by the river in the evening.", 3);
    // Nothing wider than the screen, every control big enough for a finger, and the answer box at hand.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    for (const name of ["Talk", "Send", "End session"]) {
      const box = await page.getByRole("button", { name, exact: true }).boundingBox();
      expect(box!.height, name).toBeGreaterThanOrEqual(44);
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    await expect(page.getByRole("button", { name: "Talk" })).toBeInViewport();
    await expectAccessible(page, "practice (phone)");
    await shot(page, "practice-phone", false);
  });
});
