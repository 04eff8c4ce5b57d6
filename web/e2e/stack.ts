/**
 * A local stack (`python -m local_stack`) on free ports, serving the built app (web/dist): the browser
 * tests' backend. The global setup starts one for all tests; a test that needs the stack configured
 * otherwise (say, a WebSocket resume grace of 0 s) starts its own.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "..", "..");
/** The checkout whose local stack runs (PARLEY_STACK_ROOT: another one's backend, with this app built into
 * its web/dist - to try the app against a backend change before it is merged). */
export const stackRoot = process.env.PARLEY_STACK_ROOT ?? root;

export interface Stack {
  /** the web app's origin */
  web: string;
  /** the REST API */
  api: string;
  /** the emulated AWS endpoint (moto) */
  moto: string;
  /** the WebSocket API's origin, and its @connections endpoint (with the local test hooks) */
  ws: string;
  callbacks: string;
  stop(): Promise<void>;
}

/** Start a stack; `env` is added to its environment (the functions read it, e.g. WS_RESUME_GRACE_SECONDS). */
export async function startStack(env: Record<string, string> = {}): Promise<Stack> {
  if (!existsSync(path.join(stackRoot, "web", "dist", "index.html"))) throw new Error("web/dist is not built: run `npm run build`");
  const python = process.env.PARLEY_PYTHON ?? path.join(root, ".venv", "bin", "python");
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1", ...env };
  for (const key of Object.keys(childEnv)) if (key.startsWith("AWS_")) delete childEnv[key];
  const child: ChildProcess = spawn(python, ["-m", "local_stack", "--port", "0", "--web-port", "0"],
    { cwd: stackRoot, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
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
  if (!urls.web || !urls.api || !urls.ws || !urls.moto || !urls.callbacks) {
    child.kill("SIGKILL");
    throw new Error(`unexpected local stack output:\n${output.join("")}`);
  }
  child.removeAllListeners("exit");
  return {
    web: urls.web, api: urls.api, moto: urls.moto, ws: urls.ws, callbacks: urls.callbacks,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      const force = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.on("exit", () => {
        clearTimeout(force);
        resolve();
      });
      child.kill("SIGINT");
    }),
  };
}
