// quicproquo in the browser: load the engine, make sure this is the only tab using it, open
// (or create) the account, and show the app.

import { installOfflineSupport } from "./app-update.js";
import { loadEngine } from "./engine.js";
import { tryTakeEngineLock } from "./engine-lock.js";
import { TAKEN_OVER, missingFeatures, offerToUseHere, runWithLock } from "./engine-session.js";
import { describeError } from "./errors.js";
import { ChatApp } from "./views/chat-app.js";
import { showLoadProgress, showProblem } from "./views/screens.js";

async function main() {
  const missing = missingFeatures();
  if (missing) {
    showProblem("This browser cannot run quicproquo", missing);
    return;
  }
  const takenOver = sessionStorage.getItem(TAKEN_OVER) === "1";
  sessionStorage.removeItem(TAKEN_OVER);
  // The download starts at once, whether or not this tab may use the engine yet.
  const engine = loadEngine(showLoadProgress);
  engine.catch(() => {}); // reported where it is awaited
  // The offline copy is made once the engine is here, so the two downloads do not compete.
  engine.finally(installOfflineSupport).catch(() => {});
  const lock = await tryTakeEngineLock();
  if (lock) await runWithLock(engine, lock, startApp);
  else offerToUseHere(engine, takenOver ? "taken-over" : "open-elsewhere", startApp);
}

/** @type {import("./engine-session.js").StartView} */
function startApp(client) {
  const app = new ChatApp(client);
  app.start();
  return app;
}

main().catch((e) => showProblem("Something went wrong", describeError(e)));
