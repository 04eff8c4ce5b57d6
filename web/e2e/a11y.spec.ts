import { expect, test, type Page } from "@playwright/test";
import { gzipSync } from "node:zlib";
import { asNewDevice, callApi, expectAccessible, shot, web } from "./helpers";

test("every main screen passes axe (the others are checked inside their flows)", async ({ page }) => {
  await asNewDevice(page);
  for (const [route, heading, name] of [
    ["/", "Welcome to Parley", "home"],
    ["/practice/settings", "Practice settings", "settings"],
    ["/practice/progress", "Progress", "progress"],
    ["/practice/history", "Practice history", "history (empty)"],
    ["/proofread/history", "Proofreading history", "proofreading history (empty)"],
  ] as const) {
    await page.goto(`${web()}${route}`);
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    await expect(page.getByRole("status").filter({ hasText: "Loading" })).toHaveCount(0);
    await expectAccessible(page, name);
    await shot(page, name.replace(/\W+/g, "-"));
  }
});

test("Korean by default when the browser prefers it, and switchable", async ({ browser }) => {
  const context = await browser.newContext({ locale: "ko-KR" });
  const page = await context.newPage();
  await page.goto(`${web()}/`);
  await expect(page.getByRole("heading", { level: 1, name: "Parley에 오신 것을 환영합니다" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "ko");
  await expectAccessible(page, "home (Korean)");
  await shot(page, "home-ko");
  await page.getByRole("button", { name: "English" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Welcome to Parley" })).toBeVisible();
  await page.reload();
  await expect(page.locator("html")).toHaveAttribute("lang", "en"); // the choice is remembered
  await context.close();
});

test("keyboard only: a typed practice turn and a proofreading run", async ({ page }) => {
  await asNewDevice(page);
  await page.goto(`${web()}/`);
  await expect(page.getByRole("heading", { level: 1, name: "Welcome to Parley" })).toBeVisible();
  // The skip link is the first stop, and focus is always visible.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
  expect(outline).not.toBe("none");

  await page.getByRole("link", { name: "Start practising" }).focus();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/practice$/);
  await page.getByRole("button", { name: "Start a session" }).focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("status").filter({ hasText: "Your turn." })).toBeVisible();
  // From the Talk button, Tab reaches the answer box; Enter sends.
  await page.getByRole("button", { name: "Talk" }).focus();
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Or type your answer")).toBeFocused();
  await page.keyboard.type("I usually walk to work in the morning.");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("list", { name: "Conversation" }).getByRole("listitem")).toHaveCount(3);

  await page.goto(`${web()}/proofread`);
  await page.getByLabel("Copy to proofread").focus();
  await page.keyboard.type("The goverment said so.");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Proofread" })).toBeFocused();
  await page.keyboard.press("Enter");
  // The result's heading takes focus; the correction's Accept button is reachable with Tab.
  await expect(page.getByRole("heading", { name: "1 correction" })).toBeFocused();
  const accept = page.getByRole("button", { name: "Accept: goverment → government" });
  for (let i = 0; i < 10 && !(await accept.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  await expect(accept).toBeFocused();
  await page.keyboard.press("Space");
  await expect(page.getByLabel("Corrected text")).toHaveValue("The government said so.");
});

test("the first load's JavaScript is at most 250 KB gzipped, on each product's first screen", async ({ browser }) => {
  for (const [route, heading] of [["/", "Welcome to Parley"], ["/practice", "Speaking practice"],
    ["/proofread", "Proofreading"]] as const) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const scripts = new Map<string, Buffer>();
    page.on("response", async (response) => {
      if (response.request().resourceType() === "script") scripts.set(response.url(), await response.body());
    });
    await page.goto(`${web()}${route}`, { waitUntil: "networkidle" });
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    const gzipped = [...scripts.values()].reduce((sum, body) => sum + gzipSync(body, { level: 9 }).length, 0);
    console.log(`first load of ${route}: ${scripts.size} scripts, ${(gzipped / 1024).toFixed(1)} KB gzipped`);
    expect(scripts.size).toBeGreaterThan(0);
    expect(gzipped, route).toBeLessThanOrEqual(250 * 1024);
    await context.close();
  }
});

/** Korean typed through an IME, as a person types it: each syllable composed jamo by jamo (CDP's
 * Input.imeSetComposition), then committed; `enterWhileComposing` presses Enter before the last commit. */
async function typeKorean(page: Page, syllables: string[][], enterWhileComposing = false) {
  const cdp = await page.context().newCDPSession(page);
  for (const [i, steps] of syllables.entries()) {
    for (const text of steps) await cdp.send("Input.imeSetComposition", { text, selectionStart: text.length, selectionEnd: text.length });
    if (enterWhileComposing && i === syllables.length - 1) await page.keyboard.press("Enter");
    await cdp.send("Input.insertText", { text: steps.at(-1)! });
  }
  await cdp.detach();
}

test("Korean IME input: nothing is sent or saved half-composed, and the text arrives whole", async ({ page }) => {
  const device = await asNewDevice(page);
  // A prompt name: Enter while a syllable is composing does not submit the form.
  await page.goto(`${web()}/proofread/prompts`);
  await page.getByRole("button", { name: "New prompt" }).click();
  await page.getByLabel("Name").focus();
  await typeKorean(page, [["ㄱ", "겨", "경"], ["ㅈ", "제"], ["ㅂ", "부"]], true);
  await expect(page.getByRole("heading", { name: "New prompt" })).toBeVisible();
  await expect(page.getByLabel("Name")).toHaveValue("경제부");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("heading", { name: "Edit 경제부" })).toBeVisible();

  // The editor: composed Korean is proofread at the right characters.
  await page.goto(`${web()}/proofread`);
  await page.getByLabel("Copy to proofread").focus();
  await typeKorean(page, [["ㅍ", "펴", "편"], ["ㅅ", "서", "성"], ["ㅎ", "하", "할"], ["ㅅ", "수"], ["ㅇ", "이", "있"],
    ["ㄷ", "다"]]);
  await expect(page.getByLabel("Copy to proofread")).toHaveValue("편성할수있다");
  await page.getByRole("button", { name: "Proofread" }).click();
  await expect(page.getByRole("heading", { name: "1 correction" })).toBeVisible();
  await expect(page.locator(".marked .fix")).toHaveText("할수있");

  // The practice answer box: Enter while composing is not a send; Enter afterwards sends it all.
  await page.goto(`${web()}/practice`);
  await page.getByRole("button", { name: "Start a session" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Your turn." })).toBeVisible();
  const box = page.getByLabel("Or type your answer");
  await box.focus();
  await page.keyboard.type("How do you say ");
  await typeKorean(page, [["ㄱ", "기", "김"], ["ㅊ", "치"]]);
  await expect(box).toHaveValue("How do you say 김치");
  await typeKorean(page, [["ㅇ", "이", "인"]], true);
  const turns = page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
  await expect(page.getByRole("status").filter({ hasText: "Your turn." })).toBeVisible();
  await expect(turns, "the Enter that ended a syllable sent nothing").toHaveCount(1);
  await box.fill("How do you say 김치 in English?"); // (a simulated Enter leaves a new line a real IME does not)
  await box.press("Enter");
  await expect(turns).toHaveCount(3);
  await expect(turns.nth(1)).toContainText("How do you say 김치 in English?");
  const sessions = await (await callApi(device, "GET", "/sessions")).json() as { items: { turnCount: number }[] };
  expect(sessions.items[0]!.turnCount, "one learner turn saved").toBe(1);
});

test("installable: the manifest and its icons meet the browser's criteria", async ({ page }) => {
  await page.goto(`${web()}/`);
  await expect(page.getByRole("heading", { level: 1, name: "Welcome to Parley" })).toBeVisible();
  const cdp = await page.context().newCDPSession(page);
  const manifest = await cdp.send("Page.getAppManifest");
  expect(manifest.errors, "the manifest parses cleanly").toEqual([]);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  // A test's browser context is incognito-like, which alone keeps Chromium from offering to install.
  expect(installabilityErrors.map((e) => e.errorId).filter((id) => id !== "in-incognito")).toEqual([]);
  const parsed = JSON.parse(manifest.data!) as { display: string; start_url: string; icons: { src: string; sizes: string; type: string }[] };
  expect(parsed.display).toBe("standalone");
  for (const icon of parsed.icons) {
    const response = await page.request.get(new URL(icon.src, web()).href);
    expect(response.ok(), icon.src).toBe(true);
    expect(response.headers()["content-type"], icon.src).toContain(icon.type);
    if (icon.type === "image/png") {
      const png = await response.body();
      const [w, h] = [png.readUInt32BE(16), png.readUInt32BE(20)];
      expect(`${w}x${h}`, icon.src).toBe(icon.sizes);
    }
  }
});
