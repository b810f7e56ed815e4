// Checks, before any test, that everything the tests start is there, and says what is
// missing in words.

import { existsSync } from "node:fs";
import path from "node:path";
import { CHROMIUM_LAUNCH } from "./chromium.js";
import { binary, ROOT } from "./processes.js";

export default function globalSetup() {
  const problems = [];
  for (const name of ["qpq-server", "qpq-gateway", "qpq"]) {
    try {
      binary(name);
    } catch (e) {
      problems.push(e.message);
    }
  }
  for (const f of ["pkg/qpq_web.js", "pkg/qpq_web_bg.wasm", "www/index.html"]) {
    if (!existsSync(path.join(ROOT, f))) problems.push(`${f} is missing (scripts/build-web.sh builds pkg/)`);
  }
  if (!existsSync(CHROMIUM_LAUNCH.executablePath)) {
    problems.push(`${CHROMIUM_LAUNCH.executablePath} is missing (apt-get install -y chromium)`);
  }
  if (problems.length) throw new Error(`cannot run the browser tests:\n  ${problems.join("\n  ")}`);
}
