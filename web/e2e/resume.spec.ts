import { expect, test } from "@playwright/test";
import { asNewDevice, dropConnections, dynamodb, tableName } from "./helpers";
import { startStack, type Stack } from "./stack";

// A stack of its own whose answers wait 0 s for a client that dropped (WS_RESUME_GRACE_SECONDS; 20 s
// in AWS): the local offline engine answers in milliseconds, so only a zero grace lets a dropped
// client come back after its answer was ended - the same states, without waiting 20 s.
let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({ WS_RESUME_GRACE_SECONDS: "0" });
});
test.afterAll(async () => {
  await stack?.stop();
});

interface Frame {
  socket: number;
  direction: "sent" | "received";
  message: { action?: string; type?: string; requestId?: string; replayed?: boolean; error?: { code: string } };
}

test("back after the resume grace: the request ended CONNECTION_CLOSED, so it goes again under a new id", async ({ page }) => {
  const device = await asNewDevice(page);
  // Every connection goes through the test, which can keep the network "down" for new ones.
  let networkDown = false;
  let sockets = 0;
  const frames: Frame[] = [];
  await page.routeWebSocket(/^ws:/, (ws) => {
    const socket = sockets++;
    if (networkDown) {
      ws.close({ code: 1011, reason: "the network is down" });
      return;
    }
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      frames.push({ socket, direction: "sent", message: JSON.parse(String(m)) as Frame["message"] });
      server.send(m);
    });
    server.onMessage((m) => {
      frames.push({ socket, direction: "received", message: JSON.parse(String(m)) as Frame["message"] });
      ws.send(m);
    });
  });
  await page.goto(`${stack.web}/proofread`);
  await expect(page.getByRole("status").filter({ hasText: "Connected" })).toBeVisible();

  // The connection is cut after "accepted" and the first delta, and the network stays down.
  networkDown = true;
  await dropConnections(2, stack.callbacks);
  const copy = "teh end. ".repeat(60);
  await page.getByLabel("Copy to proofread").fill(copy);
  await page.getByRole("button", { name: "Proofread" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Connection lost - reconnecting…" })).toBeVisible();
  await expect(page.getByText("The connection dropped; your request is being sent again…")).toBeVisible();
  const first = frames.find((f) => f.message.action === "sendMessage")!.message.requestId!;

  // The server gave up on the client: the request's outcome is recorded (what an operator would see).
  const table = await tableName(stack.moto);
  await expect.poll(async () => {
    const item = await dynamodb("GetItem", { TableName: table, ConsistentRead: true,
      Key: { PK: { S: `DEVICE#${device}` }, SK: { S: `WSREQ#${first}` } } }, stack.moto) as
      { Item?: { status?: { S: string }; outcome?: { S: string } } };
    return `${item.Item?.status?.S} ${item.Item?.outcome?.S ?? ""}`;
  }, { timeout: 30_000 }).toMatch(/^failed .*CONNECTION_CLOSED/);

  // The network is back (the browser says so): the app reconnects at once and resends.
  networkDown = false;
  await page.evaluate(() => window.dispatchEvent(new Event("online")));
  await expect(page.getByRole("heading", { name: /^\d+ corrections$/ })).toBeVisible();
  await expect(page.getByLabel("Corrected text")).toHaveValue(copy);

  const sends = frames.filter((f) => f.message.action === "sendMessage");
  expect(sends.map((f) => f.message.requestId)).toEqual([first, first, expect.any(String)]);
  const [, resend, again] = sends;
  expect(resend!.socket, "the resend went on the new connection").toBeGreaterThan(0);
  expect(again!.message.requestId, "retried under a new id").not.toBe(first);
  const replay = frames.find((f) => f.direction === "received" && f.message.requestId === first && f.message.type === "error");
  expect(replay?.message, "the resend replayed the ending").toMatchObject({ replayed: true, error: { code: "CONNECTION_CLOSED" } });
  expect(frames.some((f) => f.direction === "received" && f.message.requestId === again!.message.requestId
    && f.message.type === "complete")).toBe(true);
  await expect(page.getByRole("alert")).toHaveCount(0);
});
