// The engine in a SharedWorker, where the browser has them (engine-session.js decides): one
// engine for every tab of the profile (or of one widget's storage partition), living as long
// as any of them. No tab leads, so closing any tab, even the first, changes nothing for the
// others.
//
// The worker holds the Web Lock "qpq-engine" as a leading tab would (the service worker then
// leaves pushes to it), loads the engine, opens the stored account with the options of the
// first tab that joined, and serves every tab through an EngineHub (engine-hub.js), as the
// leading tab does in the fallback.
//
// Each tab talks to the worker on two ports. On the worker's own port (control):
// - tab → worker: `join` (its id, engine options and notes), then `bind` with a MessagePort
//   for the hub, once it has learnt the state;
// - worker → tab: `progress` while the engine downloads and `loaded` once it is here (to a tab
//   that joins later, at once), `state` (starting, open, signup, locked) whenever it changes,
//   `failed` with a sentence, `note` for the tab's localStorage (see TabsStorage), and
//   `ended` when the account was signed out, deleted or locked, or to a tab that joins as the
//   worker retires (see `retire`): every tab starts again, with a new worker.
// A tab holds a Web Lock named after its id while it lives; the worker asks for it and, once
// granted (the tab is gone), ends that tab's hub port. Once the last tab is gone the worker
// disconnects and closes at once (see `retire`).

import { describeError } from "./errors.js";
import { EngineHub } from "./engine-hub.js";
import { loadEngine } from "./engine.js";
import { ENGINE_LOCK, TAB_LOCK } from "./engine-lock.js";

/** @typedef {"starting" | "open" | "signup" | "locked"} State */

/** How long an ended worker lets its last answers leave before it closes. */
const CLOSE_DELAY_MS = 100;

/** Every tab's control port → the hub ports it bound. */
const tabs = new Map();
/** @type {State} */
let state = "starting";
/** @type {string | null} why the engine could not start */
let problem = null;
let ended = false;
let begun = false;
/** Whether the engine is here (a tab that joins later is told so too). */
let loaded = false;
const hub = new EngineHub(end);

self.addEventListener("connect", (e) => {
  const control = e.ports[0];
  control.addEventListener("message", (m) => receive(control, m.data, m.ports));
  control.start();
});

/**
 * @param {MessagePort} control
 * @param {any} m
 * @param {readonly MessagePort[]} ports
 */
function receive(control, m, ports) {
  if (typeof m !== "object" || m === null) return;
  switch (m.kind) {
    case "join": {
      if (tabs.has(control) || typeof m.tab !== "string") return;
      tabs.set(control, []);
      navigator.locks.request(TAB_LOCK + m.tab, () => gone(control));
      if (loaded) control.postMessage({ kind: "loaded" });
      control.postMessage(ended ? { kind: "ended" } : problem ? { kind: "failed", problem } : { kind: "state", state });
      if (!begun) {
        begun = true;
        globalThis.localStorage ??= new TabsStorage(m.notes);
        begin(m.options ?? {});
      }
      break;
    }
    case "bind": {
      const bound = tabs.get(control);
      if (!bound || !ports[0]) return;
      bound.push(ports[0]);
      hub.serve(ports[0]);
      break;
    }
  }
}

/** The tab of `control` is gone (closed, reloaded or crashed): its hub ports end. */
function gone(control) {
  for (const port of tabs.get(control) ?? []) port.dispatchEvent(new MessageEvent("message", { data: { type: "bye" } }));
  tabs.delete(control);
  if (tabs.size === 0) retire();
}

/**
 * The last tab is gone. The browser ends a worker without pages when it sees fit (Chromium a
 * few hundred milliseconds later, longer under load; a browser may keep it longer still), and
 * until then its engine would take the messages that arrive and acknowledge them with no page
 * to show them, so no push would come for them either. So the worker disconnects at once:
 * what arrives from now on stays queued at the node, which pushes it, and the service worker
 * shows it. Then it closes, giving the engine lock to whoever waits (a push being handled).
 * A tab that joins meanwhile (a reload) is told `ended` and starts again with a new worker.
 */
async function retire() {
  if (ended) return;
  ended = true;
  try {
    await hub.client?.stop();
  } finally {
    self.close();
  }
}

function tell(message) {
  for (const control of tabs.keys()) control.postMessage(message);
}

/** @param {State} next */
function setState(next) {
  state = next;
  tell({ kind: "state", state });
}

/**
 * Waits for the engine lock (a service worker may be handling a push), loads the engine and
 * opens the account; holds the lock until the worker ends.
 * @param {object} options the first tab's engine options
 */
function begin(options) {
  navigator.locks
    .request(ENGINE_LOCK, async () => {
      try {
        const QpqClient = await loadEngine((received, total) => tell({ kind: "progress", received, total }));
        loaded = true;
        tell({ kind: "loaded" });
        hub.setEngine(QpqClient);
        let client = null;
        let locked = false;
        try {
          client = await QpqClient.open(options);
        } catch (e) {
          if (e?.code !== "locked") throw e;
          locked = true;
        }
        if (client) hub.attach(client);
        else {
          // Every tab shows the form until one of them opens the account.
          setState(locked ? "locked" : "signup");
          await hub.opened;
        }
        hub.start();
        setState("open");
      } catch (e) {
        fail(e);
      }
      return new Promise(() => {});
    })
    .catch(fail);
}

/**
 * The engine could not start: every tab says why, and the worker closes, so that a reload
 * (the problem screen offers one) starts a new worker rather than joining this one.
 */
function fail(e) {
  problem = describeError(e);
  tell({ kind: "failed", problem });
  setTimeout(() => self.close(), CLOSE_DELAY_MS);
}

/**
 * The engine keeps a few small notes in localStorage (when WebTransport last failed, so that
 * the next start goes straight to WebSocket: web-client/src/transport/auto.rs), which workers
 * lack. It reads a copy of the first tab's notes, and every tab stores what it writes.
 */
class TabsStorage {
  /** @param {Record<string, string>} notes */
  constructor(notes) {
    this.notes = new Map(Object.entries(notes ?? {}).filter(([, v]) => typeof v === "string"));
  }

  getItem(key) {
    return this.notes.get(String(key)) ?? null;
  }

  setItem(key, value) {
    this.notes.set(String(key), String(value));
    tell({ kind: "note", key: String(key), value: String(value) });
  }

  removeItem(key) {
    this.notes.delete(String(key));
    tell({ kind: "note", key: String(key), value: null });
  }
}

/** The account was signed out, deleted or locked: every tab starts again, with a new worker. */
function end() {
  ended = true;
  tell({ kind: "ended" });
  // After the answer to the call that ended it has gone out. A tab that joins meanwhile is
  // told `ended` and starts again.
  setTimeout(() => self.close(), CLOSE_DELAY_MS);
}
