import { expect, test, type Page, type WebSocket } from "@playwright/test";
import { asNewDevice, callApi, dropConnections, expectAccessible, shot, web } from "./helpers";

// Known errors for the offline engine: Korean spacing (할수있), English misspellings (goverment,
// teh), a space before a full stop - after an emoji, where UTF-16 and code-point offsets differ.
const COPY = "🎉 정부는 내년 예산을 편성할수있다고 밝혔다. The goverment said teh budget would grow .";

/** Each highlight's text and the text before it, as the page shows them. */
async function highlights(page: Page) {
  return page.locator(".marked").evaluate((root) => {
    const found: { before: string; text: string }[] = [];
    let before = "";
    for (const node of Array.from(root.childNodes)) {
      const text = node.textContent ?? "";
      if (node instanceof HTMLElement && node.classList.contains("fix")) found.push({ before, text });
      before += text;
    }
    return found;
  });
}

async function proofread(page: Page, text: string) {
  await page.getByLabel("Copy to proofread").fill(text);
  await page.getByRole("button", { name: "Proofread" }).click();
  await expect(page.getByRole("heading", { name: /^\d+ corrections?$/ })).toBeVisible();
}

test("a proofreading run: streamed answer, highlights in place, accept one", async ({ page }) => {
  await asNewDevice(page);
  const frames: string[] = [];
  page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(String(f.payload))));
  await page.goto(`${web()}/proofread`);
  await expect(page.getByRole("status").filter({ hasText: "Connected" })).toBeVisible();
  await expectAccessible(page, "editor");

  await proofread(page, COPY);
  // The answer came as a stream: accepted, deltas in order, then the verified result.
  const types = frames.map((f) => (JSON.parse(f) as { type: string }).type);
  expect(types[0]).toBe("accepted");
  expect(types.filter((t) => t === "delta").length).toBeGreaterThan(1);
  expect(types.at(-1)).toBe("complete");

  const found = await highlights(page);
  const at = (original: string) => COPY.indexOf(original);
  for (const original of ["할수있", "goverment", "teh", " ."]) {
    const mark = found.find((h) => h.text === original);
    expect(mark, original).toBeDefined();
    expect(mark!.before, `${original} is highlighted exactly where it is`).toBe(COPY.slice(0, at(original)));
  }
  await expectAccessible(page, "editor (result)");
  await shot(page, "proofread-result");

  const corrected = page.getByLabel("Corrected text");
  await expect(corrected).toHaveValue(COPY);
  await page.getByRole("button", { name: "Accept: goverment → government" }).click();
  await expect(corrected).toHaveValue(COPY.replace("goverment", "government"));
  await expect(page.locator(".marked .fix.accepted")).toHaveText("government");
  // Reject one: Accept all leaves it as it was.
  await page.getByRole("button", { name: "Reject: teh → the" }).click();
  await expect(page.getByRole("button", { name: "Reject: teh → the" })).toHaveAttribute("aria-pressed", "true");
  await page.getByRole("button", { name: "Accept all" }).click();
  const expected = "🎉 정부는 내년 예산을 편성할 수 있다고 밝혔다. The government said teh budget would grow.";
  await expect(corrected).toHaveValue(expected);
  await page.getByRole("button", { name: "Copy the corrected text" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Copied." })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(expected);
  await expect(page.getByText(/Answered by Offline engine/)).toBeVisible();
  await expect(page.getByTestId("web-search"), "no web search asked for: nothing said").toHaveCount(0);
});

test("a request in flight survives a dropped connection", async ({ page }) => {
  await asNewDevice(page);
  const sockets: WebSocket[] = [];
  const sent: { socket: number; requestId: string; action: string }[] = [];
  page.on("websocket", (ws) => {
    const index = sockets.push(ws) - 1;
    ws.on("framesent", (f) => {
      const m = JSON.parse(String(f.payload)) as { action: string; requestId: string };
      sent.push({ socket: index, requestId: m.requestId, action: m.action });
    });
  });
  await page.goto(`${web()}/proofread`);
  await expect(page.getByRole("status").filter({ hasText: "Connected" })).toBeVisible();
  await dropConnections(2); // cut after "accepted" and the first delta
  await proofread(page, "teh end. ".repeat(60));
  await expect(page.getByRole("status").filter({ hasText: "Connected" })).toBeVisible();
  const requests = sent.filter((m) => m.action === "sendMessage");
  expect(sockets.length, "a second connection was opened").toBe(2);
  expect(requests.map((r) => r.socket)).toEqual([0, 1]);
  expect(requests[1]!.requestId, "the request was sent again under its own id").toBe(requests[0]!.requestId);
  await expect(page.getByLabel("Corrected text")).toHaveValue("teh end. ".repeat(60));
});

test("prompts with an attached file, then the usage and history of the run", async ({ page }) => {
  await asNewDevice(page);
  await page.goto(`${web()}/proofread/prompts`);
  await expectAccessible(page, "prompts");
  await page.getByRole("button", { name: "New prompt" }).click();
  await page.getByLabel("Name").fill("Newsroom style");
  await page.getByLabel("Description").fill("House rules for the news desk");
  await page.getByLabel("Instructions").fill("Use the newsroom's spelling of place names.");
  await expect(page.getByText("Instructions: 43 bytes")).toBeVisible(); // counted as typed
  await page.getByLabel("Let the proofreader search the web (fact-check)").check();
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("heading", { name: "Edit Newsroom style" })).toBeVisible();
  await expect(page.getByLabel("Let the proofreader search the web (fact-check)")).toBeChecked();

  const guide = "# Style guide\n\n- Seoul, not Soul.\n- 띄어쓰기는 표준국어대사전을 따른다.\n";
  await page.getByLabel("Attach a file (.txt or .md)").setInputFiles({
    name: "style-guide.md", mimeType: "text/markdown", buffer: Buffer.from(guide, "utf8") });
  await expect(page.getByRole("status").filter({ hasText: "Uploaded." })).toBeVisible();
  const size = Buffer.byteLength(guide, "utf8");
  await expect(page.getByText(`style-guide.md (${size} B)`)).toBeVisible();
  await expect(page.getByText("not uploaded")).toHaveCount(0);
  await expect(page.getByText(/of 100,000 bytes used/).first()).toBeVisible();
  await expect(page.getByText(`Instructions 43 bytes + files ${size} bytes = ${43 + size} of 100,000 bytes`)).toBeVisible();
  // Korean counts three bytes a syllable, as the budget does.
  await page.getByLabel("Instructions").fill("지명은 신문사 표기를 따른다.");
  await expect(page.getByText(`Instructions 40 bytes + files ${size} bytes = ${40 + size} of 100,000 bytes`)).toBeVisible();
  await page.getByLabel("Instructions").fill("Use the newsroom's spelling of place names.");
  await expectAccessible(page, "prompts (files)");
  await shot(page, "proofread-prompts");

  await page.getByRole("navigation", { name: "Proofreading" }).getByRole("link", { name: "Editor" }).click();
  await page.getByLabel("System prompt").selectOption({ label: "Newsroom style" });
  await proofread(page, "The goverment met in Seoul.");
  await expect(page.getByTestId("web-search"), "the answer says what came of the web search")
    .toHaveText("did not need to search the web");

  await page.getByRole("navigation", { name: "Proofreading" }).getByRole("link", { name: "Usage" }).click();
  // The usage recorder counts an event about a second after the call.
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(page.getByTestId("usage-events")).not.toHaveText("0", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole("table").getByRole("rowheader", { name: "Offline engine" })).toBeVisible();
  await expectAccessible(page, "usage");
  await shot(page, "proofread-usage");

  await page.getByRole("navigation", { name: "Proofreading" }).getByRole("link", { name: "History" }).click();
  await page.getByLabel("Engine").selectOption("offline");
  await page.getByRole("button", { name: "The goverment met in Seoul." }).click();
  await expect(page.getByText("The government met in Seoul.")).toBeVisible();
  await page.getByLabel("Engine").selectOption("bedrock");
  await expect(page.getByText("No conversations yet.")).toBeVisible();
  await expectAccessible(page, "proofreading history");
});

test("a prompt deleted elsewhere: the error after the acknowledgement says so, and the copy is kept", async ({ page }) => {
  const device = await asNewDevice(page);
  const created = await callApi(device, "POST", "/prompts", { name: "Sports desk" });
  const { promptId } = await created.json() as { promptId: string };
  const frames: string[] = [];
  page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(String(f.payload))));
  await page.goto(`${web()}/proofread`);
  await page.getByLabel("System prompt").selectOption({ label: "Sports desk" });
  expect((await callApi(device, "DELETE", `/prompts/${promptId}`)).status).toBe(204); // another tab
  await page.getByLabel("Copy to proofread").fill("The goverment said so.");
  await page.getByRole("button", { name: "Proofread" }).click();
  await expect(page.getByRole("alert")).toContainText("That system prompt no longer exists");
  expect(frames.map((f) => (JSON.parse(f) as { type: string }).type), "acknowledged first, the error after")
    .toEqual(["accepted", "error"]);
  await expect(page.getByLabel("System prompt")).toHaveValue("");
  await expect(page.getByLabel("Copy to proofread")).toHaveValue("The goverment said so.");
  await page.getByRole("button", { name: "Proofread" }).click();
  await expect(page.getByRole("heading", { name: "1 correction" })).toBeVisible();
});
