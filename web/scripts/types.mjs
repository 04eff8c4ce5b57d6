// src/shared/api/schema.d.ts from the repository's openapi.json (openapi-typescript). The file is
// rewritten only when its content changes, so a build is not made stale by regenerating it.
import { readFileSync, writeFileSync } from "node:fs";
import openapiTS, { astToString } from "openapi-typescript";

const source = new URL("../../openapi.json", import.meta.url);
const target = new URL("../src/shared/api/schema.d.ts", import.meta.url);
const header = "// Generated from openapi.json by scripts/types.mjs (npm run types). Do not edit.\n";
const text = header + astToString(await openapiTS(JSON.parse(readFileSync(source, "utf8"))));
let old = "";
try {
  old = readFileSync(target, "utf8");
} catch {
  /* first run */
}
if (old !== text) {
  writeFileSync(target, text);
  console.log("schema.d.ts updated from openapi.json");
}
