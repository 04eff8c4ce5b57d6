/**
 * Starts the local stack for the browser tests (see stack.ts) and stops it afterwards. Its URLs
 * reach the tests through the environment.
 */

import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM } from "../playwright.config";
import { startStack } from "./stack";

const here = path.dirname(fileURLToPath(import.meta.url));

export default async function globalSetup(): Promise<() => Promise<void>> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make test\` (it installs Debian's chromium)`);
  mkdirSync(path.join(here, "artifacts", "screenshots"), { recursive: true });
  const stack = await startStack();
  process.env.PARLEY_WEB_URL = stack.web;
  process.env.PARLEY_API_URL = stack.api;
  process.env.PARLEY_WS_CALLBACKS = stack.callbacks;
  process.env.PARLEY_MOTO_URL = stack.moto;
  return stack.stop;
}
