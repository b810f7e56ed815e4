// Running the engine while this tab (or widget frame) holds the engine lock, for a view that
// the caller starts: the full app (app.js) or the embedded chat (embed-app.js). Opens the
// stored account or asks for a new one, and hands the engine over cleanly when another tab
// asks for it; shows "open in another tab" with **Use here** while another one has it; and
// says, in words, what a browser lacks to run it.

import { locksSupported, takeOverEngineLock, waitForEngineLock } from "./engine-lock.js";
import { describeError } from "./errors.js";
import { showElsewhere, showProblem, showScreen } from "./views/screens.js";
import { askForAccount } from "./views/signup.js";
import { askForPassphrase } from "./views/unlock.js";
import { engineOptions } from "./transport-setting.js";

/** Set (for this tab only) when another tab took the engine over and this one reloaded. */
export const TAKEN_OVER = "qpq-taken-over";

/**
 * A view of a running client: started once the account is open, destroyed when the engine
 * is handed over.
 * @typedef {(client: import("/pkg/qpq_web.js").QpqClient) => { destroy(): void }} StartView
 */

/**
 * Runs `startView` while this tab holds the engine lock.
 * @param {Promise<typeof import("/pkg/qpq_web.js").QpqClient>} engine
 * @param {import("./engine-lock.js").EngineLock} lock
 * @param {StartView} startView
 */
export async function runWithLock(engine, lock, startView) {
  showScreen("loading");
  const handover = Promise.race([lock.asked.then(() => "asked"), lock.lost.then(() => "lost")]);
  let client;
  try {
    const QpqClient = await engine;
    try {
      client = await QpqClient.open(engineOptions());
    } catch (e) {
      if (e?.code !== "locked") throw e;
      client = await Promise.race([askForPassphrase(QpqClient, engineOptions()), handover]);
    }
    if (!client) client = await Promise.race([askForAccount(QpqClient, engineOptions()), handover]);
  } catch (e) {
    lock.release();
    showProblem("quicproquo could not start", describeError(e));
    return;
  }
  const view = typeof client === "object" ? startView(client) : null;
  const why = typeof client === "string" ? client : await handover;
  view?.destroy();
  if (why === "asked") {
    // Another tab asked: stop cleanly (connection closed, no write in flight), then hand over.
    if (typeof client === "object") await client.stop();
    lock.release();
    offerToUseHere(engine, "taken-over", startView);
    return;
  }
  // The lock was stolen (this tab did not answer in time). Reloading ends whatever this
  // tab's engine still had running; the reloaded page says what happened.
  sessionStorage.setItem(TAKEN_OVER, "1");
  location.reload();
}

/**
 * Another tab has the engine: wait for it to close, or take over when asked.
 * @param {Promise<typeof import("/pkg/qpq_web.js").QpqClient>} engine
 * @param {"open-elsewhere" | "taken-over"} why
 * @param {StartView} startView
 */
export function offerToUseHere(engine, why, startView) {
  const waiting = new AbortController();
  waitForEngineLock(waiting.signal).then(
    (lock) => runWithLock(engine, lock, startView),
    () => {}, // gave up waiting: "Use here" was pressed
  );
  showElsewhere(why, async () => {
    waiting.abort();
    const lock = await takeOverEngineLock();
    await runWithLock(engine, lock, startView);
  });
}

/** What this browser lacks, in words, or null. */
export function missingFeatures() {
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
