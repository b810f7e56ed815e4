// Running a view (the full app, app.js, or the embedded chat, embed-app.js) in any number of
// tabs of one browser profile at once. Every tab waits in line for the engine lock
// (engine-lock.js); the tab that holds it leads: it opens the stored account, runs the one
// engine and shares it (engine-hub.js). Every other tab shows the same view over a handle to
// the leading tab's engine (engine-handle.js, tab-link.js). When the leading tab closes or
// reloads, the next tab in line leads: its engine (loaded already) opens the account at once,
// and the other tabs bind to it again, keeping their views.
//
// With no account yet, or one a passphrase locks, every tab shows the sign-up (or unlock)
// form, and the leading tab's engine runs whichever is used first. When the account ends in
// any tab (signed out, deleted, locked), every tab starts again. This module also says, in
// words, what a browser lacks to run quicproquo.

import { leadWhenFree, locksSupported } from "./engine-lock.js";
import { EngineHandle } from "./engine-handle.js";
import { EngineHub } from "./engine-hub.js";
import { TabLink } from "./tab-link.js";
import { describeError } from "./errors.js";
import { showProblem } from "./views/screens.js";
import { askForAccount } from "./views/signup.js";
import { askForPassphrase } from "./views/unlock.js";
import { engineOptions } from "./transport-setting.js";

/** How long the leading tab lets its last answers leave before it reloads. */
const RELOAD_DELAY_MS = 200;

/**
 * A view of the engine: started once the account is open, destroyed when it closes.
 * @typedef {(client: EngineHandle) => { destroy(): void }} StartView
 */

/**
 * Runs `startView` in this tab, with this tab's engine or the leading tab's.
 * @param {Promise<typeof import("/pkg/qpq_web.js").QpqClient>} engine
 * @param {StartView} startView
 */
export function runSession(engine, startView) {
  const link = new TabLink();
  const handle = new EngineHandle();
  let view = null;
  let leading = false;
  /** The leading tab this one is bound to. */
  let boundTo = null;
  /** The form shown ("signup" or "locked") while there is no open account. */
  let asking = null;

  const showView = () => {
    asking = null;
    if (!view) view = startView(handle);
  };
  const dropView = () => {
    view?.destroy();
    view = null;
    handle.clearListeners();
  };
  const restart = () => {
    if (!handle.ending) location.reload();
  };
  /** Shows the sign-up or unlock form; the leading tab's engine runs what it sends. */
  const ask = (state) => {
    if (asking === state) return;
    asking = state;
    const form = state === "locked" ? askForPassphrase : askForAccount;
    form(handle.statics, engineOptions()).catch((e) => showProblem("quicproquo could not start", describeError(e)));
  };

  link.onEnded = restart;
  link.onLeader = (leader, state) => {
    if (leading) return;
    if (state === "starting") {
      // The tab this one used is gone; the next one opens the account.
      if (boundTo) handle.detach();
      boundTo = null;
      return;
    }
    if (boundTo !== leader) {
      boundTo = leader;
      handle.bindRemote(link.portTo(leader)).then(() => boundTo === leader && showView());
    }
    if (state === "open") return;
    // No account, or a locked one: a view drawn from the account starts again.
    if (view) restart();
    else ask(state);
  };
  link.ask();

  leadWhenFree(async () => {
    leading = true;
    boundTo = null;
    handle.detach();
    const hub = new EngineHub(() => {
      link.ended();
      if (!handle.ending) setTimeout(() => location.reload(), RELOAD_DELAY_MS);
    });
    link.acceptPorts((port) => hub.serve(port));
    handle.opener = hub;
    link.lead("starting");
    try {
      const QpqClient = await engine;
      hub.setEngine(QpqClient);
      let client = null;
      let locked = false;
      try {
        client = await QpqClient.open(engineOptions());
      } catch (e) {
        if (e?.code !== "locked") throw e;
        locked = true;
      }
      if (client) hub.attach(client);
      else {
        // No account, or a locked one: every tab shows the form until one of them opens it.
        const state = locked ? "locked" : "signup";
        link.lead(state);
        dropView();
        ask(state);
        await hub.opened;
      }
    } catch (e) {
      showProblem("quicproquo could not start", describeError(e));
      return;
    }
    handle.bindLocal(hub);
    if (view) handle.start();
    else showView();
    link.lead("open");
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
  if (typeof BroadcastChannel !== "function") lacks.push("BroadcastChannel");
  if (!("WebSocket" in window)) lacks.push("WebSocket");
  return lacks.length ? `This browser lacks ${lacks.join(", ")}. Use a current Chrome, Edge, Firefox or Safari.` : null;
}
