import { expect, test } from "@playwright/test";
import { apiUrl, appSocketDown, asNewDevice, callApi, dynamodb, expectAccessible, shot, web } from "./helpers";

/** Put an operator's QUOTA item on the device (as docs/api/usage.md shows with the AWS CLI). */
async function limitTokens(device: string, monthlyTokens: number) {
  const tables = await dynamodb("ListTables", {}) as { TableNames: string[] };
  const table = tables.TableNames.find((name) => name.startsWith("parley-"))!;
  await dynamodb("PutItem", { TableName: table, Item: {
    PK: { S: `DEVICE#${device}` }, SK: { S: "QUOTA" }, monthlyTokens: { N: String(monthlyTokens) } } });
}

test("quota exceeded: the learner is told, and keeps what they typed", async ({ page }) => {
  const device = await asNewDevice(page);
  // Use some tokens, wait until the usage recorder has counted them, then cap the month below that.
  expect((await callApi(device, "POST", "/chat", { message: "Hello there", messages: [] })).status).toBe(200);
  await expect.poll(async () => {
    const usage = await (await callApi(device, "GET", "/usage")).json() as { totals: { totalTokens: number } };
    return usage.totals.totalTokens;
  }, { timeout: 30_000 }).toBeGreaterThan(1);
  await limitTokens(device, 1);

  await page.goto(`${web()}/proofread`);
  const copy = "The goverment said teh budget would grow.";
  await page.getByLabel("Copy to proofread").fill(copy);
  await page.getByRole("button", { name: "Proofread" }).click();
  await expect(page.getByRole("alert")).toContainText("You have used this month's allowance. It resets on");
  await expect(page.getByLabel("Copy to proofread")).toHaveValue(copy);
  await expectAccessible(page, "editor (quota)");
  await shot(page, "error-quota");

  await page.goto(`${web()}/practice`);
  await page.getByRole("button", { name: "Start a session" }).click();
  await expect(page.getByRole("alert")).toContainText("You have used this month's allowance");
  await expect(page.getByRole("button", { name: "Try again" })).toBeVisible();
});

test("engine unavailable: a 503 is explained, the typed turn is kept and sent once on retry", async ({ page }) => {
  const device = await asNewDevice(page);
  // The API lets the page read Retry-After (the intercepted answer below carries the same headers).
  const answer = await callApi(device, "GET", "/settings");
  expect(answer.headers.get("access-control-expose-headers")).toContain("Retry-After");
  await appSocketDown(page); // the REST turn is the one under test (the streamed turn has no Retry-After)
  await page.goto(`${web()}/practice`);
  await page.getByRole("button", { name: "Start a session" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Your turn." })).toBeVisible();

  // The engine is down for learner turns (the API's documented answer after its retries and fallback).
  const seenIds: string[] = [];
  await page.route(`${apiUrl()}/chat`, async (route) => {
    const body = route.request().postDataJSON() as { sessionId?: string; messageId?: string };
    if (!body.sessionId) return route.continue();
    seenIds.push(body.messageId!);
    return route.fulfill({ status: 503, headers: { "Retry-After": "30", "Access-Control-Allow-Origin": web(),
        "Access-Control-Expose-Headers": "Retry-After" },
      contentType: "application/json",
      body: JSON.stringify({ error: { code: "AI_UNAVAILABLE", message: "No engine could answer in time.",
        details: [{ engine: "bedrock", messageId: body.messageId }] } }) });
  });
  const text = "Yesterday I cooked dinner for my family.";
  await page.getByLabel("Or type your answer").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.getByRole("alert")).toContainText("The AI service is busy right now. Nothing was lost - try again in 30 seconds.");
  await expect(page.getByLabel("Or type your answer")).toHaveValue(text);
  await expectAccessible(page, "practice (503)");
  await shot(page, "error-unavailable");

  await page.unroute(`${apiUrl()}/chat`);
  await page.getByRole("button", { name: "Try again" }).click();
  const turns = page.getByRole("list", { name: "Conversation" }).getByRole("listitem");
  await expect(turns).toHaveCount(3);
  await expect(turns.nth(1)).toHaveText(new RegExp(text));
  expect(seenIds).toHaveLength(1);
});

test("no network: the settings screen says so and offers to try again", async ({ page }) => {
  await asNewDevice(page);
  await page.route(`${apiUrl()}/settings`, (route) => route.abort("internetdisconnected"));
  await page.goto(`${web()}/practice/settings`);
  await expect(page.getByRole("alert")).toContainText("Parley can't be reached");
  await page.unroute(`${apiUrl()}/settings`);
  await page.getByRole("button", { name: "Try again" }).click();
  await expect(page.getByLabel("Accent")).toHaveValue("US");
});
