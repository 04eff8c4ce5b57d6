/**
 * Starts the local stack (`python -m local_stack`) on free ports for the browser tests, serving the
 * built app (web/dist), and stops it afterwards. Its URLs reach the tests through the environment.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM } from "../playwright.config";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");

export default async function globalSetup(): Promise<() => Promise<void>> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make test\` (it installs Debian's chromium)`);
  if (!existsSync(path.join(root, "web", "dist", "index.html"))) throw new Error("web/dist is not built: run `npm run build`");
  mkdirSync(path.join(here, "artifacts", "screenshots"), { recursive: true });
  const python = process.env.PARLEY_PYTHON ?? path.join(root, ".venv", "bin", "python");
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
  for (const key of Object.keys(env)) if (key.startsWith("AWS_")) delete env[key];
  const child: ChildProcess = spawn(python, ["-m", "local_stack", "--port", "0", "--web-port", "0"],
    { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  const urls = await new Promise<Record<string, string>>((resolve, reject) => {
    const found: Record<string, string> = {};
    const timer = setTimeout(() => reject(new Error(`the local stack did not start:\n${output.join("")}`)), 120_000);
    child.on("exit", (code) => reject(new Error(`the local stack exited (${code}):\n${output.join("")}`)));
    const read = (chunk: Buffer) => {
      const text = chunk.toString();
      output.push(text);
      for (const line of text.split("\n")) {
        const api = /listening on (http:\/\/\S+)\s+\(AWS emulated at (http:\/\/\S+)\)/.exec(line);
        if (api) [found.api, found.moto] = [api[1]!, api[2]!];
        const ws = /WebSocket: (ws:\/\/[^/\s]+)\/\S*\s+\(@connections (http:\/\/[^)\s]+)\)/.exec(line);
        if (ws) [found.ws, found.callbacks] = [ws[1]!, ws[2]!];
        const web = /Web app:\s+(http:\/\/\S+?)\/?\s/.exec(`${line} `);
        if (web) found.web = web[1]!;
        if (line.includes("Ctrl-C")) {
          clearTimeout(timer);
          resolve(found);
        }
      }
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  });
  if (!urls.web || !urls.api || !urls.ws) throw new Error(`unexpected local stack output:\n${output.join("")}`);
  process.env.PARLEY_WEB_URL = urls.web;
  process.env.PARLEY_API_URL = urls.api;
  process.env.PARLEY_WS_CALLBACKS = urls.callbacks;
  process.env.PARLEY_MOTO_URL = urls.moto;
  child.removeAllListeners("exit");
  return async () => {
    child.kill("SIGINT");
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.on("exit", () => {
        clearTimeout(force);
        resolve();
      });
    });
  };
}
