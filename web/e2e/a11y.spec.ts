import { expect, test } from "@playwright/test";
import { gzipSync } from "node:zlib";
import { asNewDevice, expectAccessible, shot, web } from "./helpers";

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
