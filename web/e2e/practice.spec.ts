import { expect, test, type Page } from "@playwright/test";
import { asNewDevice, audioDuration, expectAccessible, shot, web } from "./helpers";

/** Start a session and wait for the tutor's greeting, with its voice. */
async function startSession(page: Page) {
  await page.goto(`${web()}/practice`);
  await expect(page.getByRole("heading", { name: "Speaking practice" })).toBeVisible();
  await expectAccessible(page, "practice (start)");
  await page.getByRole("button", { name: "Start a session" }).click();
  const turns = page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
  await expect(turns).toHaveCount(1);
  await expect(page.getByRole("status").filter({ hasText: "Your turn." })).toBeVisible();
  return turns;
}

/** Press Talk, let the fake microphone say its sentence, press Stop: the transcript becomes my turn. */
async function speakATurn(page: Page, turnsBefore: number) {
  const turns = page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
  await page.getByRole("button", { name: "Talk" }).click();
  await expect(page.getByRole("button", { name: "Stop and send" })).toHaveAttribute("aria-pressed", "true");
  // The sentence in the fake microphone's file lasts about 5 s.
  await expect(page.getByRole("timer", { name: "Recording time" })).toHaveText(/0:0[5-9]/, { timeout: 20_000 });
  await page.getByRole("button", { name: "Stop and send" }).click();
  await expect(page.getByRole("status").filter({ hasText: /Writing down what you said|Your tutor is thinking/ }))
    .toBeVisible();
  await expect(turns).toHaveCount(turnsBefore + 2, { timeout: 60_000 });
  const mine = turns.nth(turnsBefore);
  await expect(mine).toHaveClass(/learner/);
  return (await mine.locator("p").first().innerText()).trim();
}

async function typeATurn(page: Page, text: string, turnsBefore: number) {
  const turns = page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
  await page.getByLabel("Or type your answer").fill(text);
  await page.getByLabel("Or type your answer").press("Enter");
  await expect(turns).toHaveCount(turnsBefore + 2);
  await expect(turns.nth(turnsBefore)).toHaveText(new RegExp(text));
}

test("a whole practice session: spoken and typed turns, report, history, delete", async ({ page }) => {
  await asNewDevice(page);
  const turns = await startSession(page);
  expect(await audioDuration(page, 0), "the greeting's voice is real audio").toBeGreaterThan(0);

  const said = await speakATurn(page, 1);
  expect(said.length, "a transcript of the spoken turn is shown").toBeGreaterThan(3);
  expect(await audioDuration(page, 1), "the tutor's reply is spoken").toBeGreaterThan(0);

  await typeATurn(page, "I would like to travel to Busan next summer.", 3);
  await typeATurn(page, "My favourite food is kimchi stew because it is warm.", 5);
  await expect(turns).toHaveCount(7);
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

test.describe("on a phone", () => {
  test.use({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });

  test("the practice session works at 375 × 667 with large touch targets", async ({ page }) => {
    await asNewDevice(page);
    await startSession(page);
    expect(await audioDuration(page, 0)).toBeGreaterThan(0);
    await speakATurn(page, 1);
    await typeATurn(page, "I like walking by the river in the evening.", 3);
    // Nothing wider than the screen, and every control big enough for a finger.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    for (const name of ["Talk", "Send", "End session"]) {
      const box = await page.getByRole("button", { name, exact: true }).boundingBox();
      expect(box!.height, name).toBeGreaterThanOrEqual(44);
    }
    await expectAccessible(page, "practice (phone)");
    await shot(page, "practice-phone", false);
  });
});
