// quicproquo in the browser: load the engine, open (or create) the account — in the tabs'
// SharedWorker, in this tab, or through the tab that runs the engine (engine-session.js) — and
// show the app.

import { installOfflineSupport } from "./app-update.js";
import { loadEngine } from "./engine.js";
import { missingFeatures, runSession } from "./engine-session.js";
import { describeError } from "./errors.js";
import { ChatApp } from "./views/chat-app.js";
import { showLoadProgress, showProblem } from "./views/screens.js";

async function main() {
  const missing = missingFeatures();
  if (missing) {
    showProblem("This browser cannot run quicproquo", missing);
    return;
  }
  runSession(
    {
      load: () => loadEngine(showLoadProgress),
      progress: showLoadProgress,
      // The offline copy is made once the engine is here, so the two downloads do not compete.
      loaded: () => installOfflineSupport().catch(() => {}),
    },
    startApp,
  );
}

/** @type {import("./engine-session.js").StartView} */
function startApp(client) {
  const app = new ChatApp(client);
  app.start();
  return app;
}

main().catch((e) => showProblem("Something went wrong", describeError(e)));
