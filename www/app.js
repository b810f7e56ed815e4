// quicproquo in the browser: load the engine, make sure this is the only tab using it, open
// (or create) the account, and show the app.

import { installOfflineSupport } from "./app-update.js";
import { loadEngine } from "./engine.js";
import { locksSupported, takeOverEngineLock, tryTakeEngineLock, waitForEngineLock } from "./engine-lock.js";
import { describeError } from "./errors.js";
import { ChatApp } from "./views/chat-app.js";
import { showElsewhere, showLoadProgress, showProblem, showScreen } from "./views/screens.js";
import { askForAccount } from "./views/signup.js";
import { engineOptions } from "./transport-setting.js";

/** Set (for this tab only) when another tab took the engine over and this one reloaded. */
const TAKEN_OVER = "qpq-taken-over";

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
  if (lock) await run(engine, lock);
  else offerToUseHere(engine, takenOver ? "taken-over" : "open-elsewhere");
}

/**
 * Runs the app while this tab holds the engine lock.
 * @param {Promise<typeof import("/pkg/qpq_web.js").QpqClient>} engine
 * @param {import("./engine-lock.js").EngineLock} lock
 */
async function run(engine, lock) {
  showScreen("loading");
  const handover = Promise.race([lock.asked.then(() => "asked"), lock.lost.then(() => "lost")]);
  let client;
  try {
    const QpqClient = await engine;
    client = await QpqClient.open(engineOptions());
    if (!client) client = await Promise.race([askForAccount(QpqClient, engineOptions()), handover]);
  } catch (e) {
    lock.release();
    showProblem("quicproquo could not start", describeError(e));
    return;
  }
  let app = null;
  if (typeof client === "object") {
    app = new ChatApp(client);
    app.start();
  }
  const why = typeof client === "string" ? client : await handover;
  app?.destroy();
  if (why === "asked") {
    // Another tab asked: stop cleanly (connection closed, no write in flight), then hand over.
    if (typeof client === "object") await client.stop();
    lock.release();
    offerToUseHere(engine, "taken-over");
    return;
  }
  // The lock was stolen (this tab did not answer in time). Reloading ends whatever this
  // tab's engine still had running; the reloaded page says what happened.
  sessionStorage.setItem(TAKEN_OVER, "1");
  location.reload();
}

/**
 * Another tab has the engine: wait for it to close, or take over when asked.
 * @param {"open-elsewhere" | "taken-over"} why
 */
function offerToUseHere(engine, why) {
  const waiting = new AbortController();
  waitForEngineLock(waiting.signal).then(
    (lock) => run(engine, lock),
    () => {}, // gave up waiting: "Use here" was pressed
  );
  showElsewhere(why, async () => {
    waiting.abort();
    const lock = await takeOverEngineLock();
    await run(engine, lock);
  });
}

/** What this browser lacks, in words, or null. */
function missingFeatures() {
  if (!window.isSecureContext) {
    return "quicproquo must be opened over HTTPS (or at http://127.0.0.1 on this computer): browsers only offer the cryptography and storage it needs to secure pages.";
  }
  const lacks = [];
  if (typeof WebAssembly !== "object") lacks.push("WebAssembly");
  if (!window.indexedDB) lacks.push("IndexedDB (is this a private window?)");
  if (!window.crypto?.subtle) lacks.push("Web Crypto");
  if (!locksSupported()) lacks.push("Web Locks");
  if (!("WebSocket" in window)) lacks.push("WebSocket");
  return lacks.length ? `This browser lacks ${lacks.join(", ")}. Use a current Chrome, Edge, Firefox or Safari.` : null;
}

main().catch((e) => showProblem("Something went wrong", describeError(e)));
