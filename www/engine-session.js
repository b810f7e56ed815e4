// Running a view (the full app, app.js, or the embedded chat, embed-app.js) in any number of
// tabs of one browser profile at once, on one engine.
//
// Where the browser has SharedWorkers, the engine runs in one (engine-worker.js) for as long
// as any tab is open; every tab shows its view over a handle to it (engine-handle.js) and
// loads no engine of its own.
//
// Elsewhere every tab waits in line for the engine lock (engine-lock.js); the tab that holds
// it leads: it opens the stored account, runs the one engine and shares it (engine-hub.js).
// Every other tab shows the same view over a handle to the leading tab's engine
// (engine-handle.js, tab-link.js). When the leading tab closes or reloads, the next tab in
// line leads: its engine (loaded already) opens the account at once, and the other tabs bind
// to it again, keeping their views.
//
// With no account yet, or one a passphrase locks, every tab shows the sign-up (or unlock)
// form, and the one engine runs whichever is used first. When the account ends in any tab
// (signed out, deleted, locked), every tab starts again. This module also says, in words,
// what a browser lacks to run quicproquo.

import { TAB_LOCK, leadWhenFree, locksSupported } from "./engine-lock.js";
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

/** The SharedWorker that runs the engine (engine-worker.js). */
const WORKER_URL = "/engine-worker.js";
/** The engine's notes in localStorage, which a worker keeps through the tabs. */
const NOTE_PREFIX = "qpq.webtransport.";

/** This tab's copy of the engine's notes. */
function engineNotes() {
  const notes = {};
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key?.startsWith(NOTE_PREFIX)) notes[key] = localStorage.getItem(key);
  }
  return notes;
}

/**
 * How this tab gets the engine.
 * @typedef {{
 *   load: () => Promise<typeof import("/pkg/qpq_web.js").QpqClient>,
 *   progress: (received: number, total: number | null) => void,
 *   loaded?: () => void,
 * }} EngineSource
 * `load` loads it in this tab (the fallback); `progress` shows its download, wherever it runs,
 * and `loaded` is called once it is there.
 */

/**
 * Runs `startView` in this tab, on the SharedWorker's engine where the browser has them, else
 * on this tab's engine or the leading tab's.
 * @param {EngineSource} source
 * @param {StartView} startView
 */
export function runSession(source, startView) {
  if (sharedWorkersSupported()) runOnWorker(source, startView);
  else runOnTabs(source, startView);
}

/** Whether the engine can run in a SharedWorker here. */
function sharedWorkersSupported() {
  return typeof SharedWorker === "function";
}

/** The view of one tab, over `handle`, with the forms shown while no account is open. */
class TabView {
  /** @param {EngineHandle} handle @param {StartView} startView */
  constructor(handle, startView) {
    this.handle = handle;
    this.startView = startView;
    this.view = null;
    /** The form shown ("signup" or "locked") while there is no open account. */
    this.asking = null;
  }

  show() {
    this.asking = null;
    if (!this.view) this.view = this.startView(this.handle);
  }

  drop() {
    this.view?.destroy();
    this.view = null;
    this.handle.clearListeners();
  }

  restart() {
    if (!this.handle.ending) location.reload();
  }

  /**
   * The account is not open (`signup` or `locked`): a view drawn from the account starts
   * again; otherwise the form is shown, and the engine runs what it sends.
   */
  notOpen(state) {
    if (this.view) this.restart();
    else this.ask(state);
  }

  ask(state) {
    if (this.asking === state) return;
    this.asking = state;
    const form = state === "locked" ? askForPassphrase : askForAccount;
    form(this.handle.statics, engineOptions()).catch((e) => showProblem("quicproquo could not start", describeError(e)));
  }
}

/**
 * Runs `startView` on the engine of the profile's SharedWorker (see engine-worker.js for the
 * messages).
 * @param {EngineSource} source
 * @param {StartView} startView
 */
function runOnWorker(source, startView) {
  const id = crypto.randomUUID();
  const handle = new EngineHandle();
  const tab = new TabView(handle, startView);
  let bound = false;
  let worker;
  try {
    worker = new SharedWorker(WORKER_URL, { type: "module", name: "qpq-engine" });
  } catch (e) {
    showProblem("quicproquo could not start", describeError(e));
    return;
  }
  // Fired when its script cannot be loaded.
  worker.addEventListener("error", () =>
    showProblem("quicproquo could not start", "The app's engine could not be loaded. Check your connection and reload the page."),
  );
  const control = worker.port;
  control.addEventListener("message", (e) => {
    const m = e.data;
    switch (m?.kind) {
      case "progress":
        source.progress(m.received, m.total);
        break;
      case "loaded":
        source.loaded?.();
        break;
      case "failed":
        showProblem("quicproquo could not start", m.problem);
        break;
      case "ended":
        tab.restart();
        break;
      case "note":
        if (!m.key?.startsWith(NOTE_PREFIX)) break;
        if (m.value === null) localStorage.removeItem(m.key);
        else localStorage.setItem(m.key, m.value);
        break;
      case "state":
        if (m.state === "starting") break;
        if (!bound) {
          bound = true;
          const channel = new MessageChannel();
          control.postMessage({ kind: "bind" }, [channel.port2]);
          handle.bindRemote(channel.port1).then(() => tab.show());
        }
        if (m.state !== "open") tab.notOpen(m.state);
        break;
    }
  });
  control.start();
  // The worker learns that this tab is gone when this lock is free.
  navigator.locks.request(TAB_LOCK + id, () => {
    control.postMessage({ kind: "join", tab: id, options: engineOptions(), notes: engineNotes() });
    return new Promise(() => {});
  });
}

/**
 * Runs `startView` in this tab, with this tab's engine or the leading tab's.
 * @param {EngineSource} source
 * @param {StartView} startView
 */
function runOnTabs(source, startView) {
  // Every tab loads the engine, so that it can take over at once when the tab running it closes.
  const engine = source.load();
  engine.catch(() => {}); // reported where it is awaited
  engine.then(() => source.loaded?.()).catch(() => {});
  const link = new TabLink();
  const handle = new EngineHandle();
  const tab = new TabView(handle, startView);
  let leading = false;
  /** The leading tab this one is bound to. */
  let boundTo = null;

  link.onEnded = () => tab.restart();
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
      handle.bindRemote(link.portTo(leader)).then(() => boundTo === leader && tab.show());
    }
    if (state !== "open") tab.notOpen(state);
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
        tab.drop();
        tab.ask(state);
        await hub.opened;
      }
    } catch (e) {
      showProblem("quicproquo could not start", describeError(e));
      return;
    }
    handle.bindLocal(hub);
    if (tab.view) handle.start();
    else tab.show();
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
