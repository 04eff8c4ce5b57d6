import { defineConfig } from "@playwright/test";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Debian's chromium: Playwright's own browser download cannot work on our machines. */
export const CHROMIUM = process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium";
const SPEECH = path.join(here, "e2e", "fixtures", "spoken-sentence.wav");

export default defineConfig({
  testDir: "e2e",
  outputDir: "e2e/artifacts/results",
  globalSetup: "./e2e/global-setup.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  reporter: [["list"]],
  use: {
    viewport: { width: 1280, height: 800 },
    locale: "en-US",
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    permissions: ["microphone", "clipboard-read", "clipboard-write"],
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        // A microphone that "says" a recorded English sentence.
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        `--use-file-for-fake-audio-capture=${SPEECH}`,
      ],
    },
  },
});
