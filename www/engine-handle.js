// The engine as the views see it, in every tab: an object with QpqClient's methods. In the
// tab that leads (holds the Web Lock "qpq-engine", where there is no SharedWorker) it calls
// the hub around the real client (engine-hub.js); in any other tab it forwards calls over a
// port to the SharedWorker or the leading tab and answers the synchronous reads from copies
// that side keeps up to date. A read whose copy this tab does not have yet answers empty, asks
// for it, and redraws once it came (a "contacts" event, or "profile" for a person's profile,
// which the views take as "look again").
//
// When the leading tab closes, another one takes the lock and the handle is bound again, to
// it or to this tab's own engine. A call under way in the closed tab is asked again of the
// new one when that is harmless (RETRYABLE); any other fails with a sentence, since it may or
// may not have been done, and nothing is sent twice behind the person's back.

import { ASYNC_METHODS, ENDING, RETRYABLE, SYNC_METHODS, marshal, readKey, toError } from "./engine-rpc.js";

/** The reads every tab keeps copies of from the start. */
const FIRST_READS = [
  ["user"],
  ["deviceId"],
  ["hasPassphrase"],
  ["connectionState"],
  ["conversations"],
  ["contacts"],
  ["exportContacts"],
  ["blockedUsers"],
  ["profile"],
];

/** What a read answers before its copy is here. */
const EMPTY = {
  conversations: [],
  history: [],
  typing: [],
  contacts: [],
  blockedUsers: [],
  // Unknown yet: keep a download rather than forget it (files.js prunes what is gone).
  hasFile: true,
  hasPassphrase: false,
};

/** A fresh empty answer of `method`. */
function empty(method) {
  const value = EMPTY[method];
  return Array.isArray(value) ? [] : value;
}

/** Said when the tab doing a change closed before it said whether the change was made. */
export const INTERRUPTED =
  "Your other quicproquo tab closed before this was done, so it may not have gone through. " +
  "Check, and try again if it did not.";

export class EngineHandle {
  constructor() {
    /**
     * QpqClient's opening methods (register, link, restore, unlock) for this tab's sign-up and
     * unlock forms: run by the leading tab's engine, whose account they open for every tab.
     * Forwarded, they resolve to `true` rather than a client: the tab follows once it is open.
     */
    this.statics = Object.fromEntries(
      ["register", "link", "restore", "unlock"].map((m) => [m, (...args) => this.invoke(m, args, true)]),
    );
    /** @type {import("./engine-hub.js").EngineHub | null} this tab's own engine */
    this.hub = null;
    /** @type {import("./engine-hub.js").PortLike | null} the port to the leading tab */
    this.port = null;
    /** Copies of the reads: key → `{ v }` or `{ e }`. */
    this.copies = new Map();
    /** Keys asked for and not come yet. */
    this.missing = new Set();
    this.askQueued = false;
    /** @type {Set<(event: object) => void>} */
    this.listeners = new Set();
    /** Calls not answered yet, by id: `{ method, args, resolve, reject, sent, tokens }`. */
    this.calls = new Map();
    this.seq = 0;
    /** Functions and signals handed to the other side, by token. */
    this.functions = new Map();
    this.tokens = 0;
    /** @type {import("./engine-hub.js").EngineHub | null} this tab's engine before the account opens */
    this.opener = null;
    /** Whether this tab asked for the account to end (it reloads itself afterwards). */
    this.ending = false;
    this.welcomed = null;
    /** Whether the events just come should be notified here (see notifiesHere). */
    this.notifyHere = false;
    window.addEventListener("focus", () => this.sayFront());
    window.addEventListener("blur", () => this.sayFront());
    document.addEventListener("visibilitychange", () => this.sayFront());
  }

  // --- binding ---------------------------------------------------------------------------------

  /** Whether a tab's engine (this one's or another's) answers now. */
  get bound() {
    return !!(this.hub || this.port);
  }

  /**
   * Uses the leading tab's engine over `port`; resolves once the first copies are here.
   * @param {import("./engine-hub.js").PortLike} port
   */
  bindRemote(port) {
    this.detach();
    this.port = port;
    port.addEventListener("message", (e) => this.receive(port, e.data));
    port.start?.();
    const keys = new Set([...FIRST_READS.map(([m, ...a]) => readKey(m, a)), ...this.copies.keys(), ...this.missing]);
    this.missing.clear();
    return new Promise((resolve) => {
      this.welcomed = resolve;
      port.postMessage({ type: "hello", keys: [...keys] });
      for (const [id, c] of this.calls) if (c.opening && !c.sent) this.send(id, c);
    });
  }

  /**
   * Uses this tab's own engine.
   * @param {import("./engine-hub.js").EngineHub} hub
   */
  bindLocal(hub) {
    this.detach();
    this.hub = hub;
    this.copies.clear();
    this.missing.clear();
    hub.onEvent((event) => this.emit(event));
    for (const [id, c] of this.calls) {
      this.calls.delete(id);
      (c.opening ? hub.open(c.method, c.args) : hub.call(c.method, c.args)).then(c.resolve, c.reject);
    }
    this.refresh();
  }

  /**
   * The engine this tab used is gone (its tab closed) or about to change: calls under way
   * there are asked again later, or fail (see the header).
   */
  detach() {
    if (this.port) {
      try {
        this.port.postMessage({ type: "bye" });
      } catch {
        // The port is closed already.
      }
      this.port.close?.();
    }
    this.port = null;
    this.hub = null;
    this.welcomed = null;
    for (const [id, c] of this.calls) {
      if (!c.sent) continue;
      this.forget(c);
      if (RETRYABLE.has(c.method)) {
        c.sent = false;
        continue;
      }
      this.calls.delete(id);
      c.reject(Object.assign(new Error(INTERRUPTED), { code: "interrupted" }));
    }
    this.emit({ type: "connection", state: "connecting" });
  }

  /** Forgets the views' listeners (the views were taken down). */
  clearListeners() {
    this.listeners.clear();
  }

  // --- what the views call ------------------------------------------------------------------

  /** @param {(event: object) => void} fn */
  onEvent(fn) {
    this.listeners.add(fn);
  }

  /** Connects (the leading tab's engine is connected already). */
  start() {
    this.hub?.start();
  }

  /** Stops the engine, for every tab (they all start again). Nothing to stop while unbound. */
  stop() {
    if (!this.bound) return Promise.resolve();
    return this.invoke("stop", []);
  }

  /**
   * Whether this tab should show notifications of the messages of the latest events: the
   * leading tab, or the one a SharedWorker picked; none while a tab is in front.
   */
  notifiesHere() {
    return this.hub ? this.hub.noTabInFront() : this.notifyHere;
  }

  /** A synchronous read (see SYNC_METHODS). */
  read(method, args) {
    if (this.hub) return this.hub.closing ? empty(method) : this.hub.client[method](...args);
    if (method === "historySince") return this.read("history", [args[0]]).filter((m) => m.index >= args[1]);
    if (method === "message") return this.read("history", [args[0]]).find((m) => m.index === args[1]);
    const key = readKey(method, args);
    const copy = this.copies.get(key);
    if (copy) {
      if (copy.e) throw toError(copy.e);
      return copy.v;
    }
    this.ask(key);
    return empty(method);
  }

  /** A call that returns a promise (see ASYNC_METHODS). */
  invoke(method, args, opening = false) {
    const hub = opening ? (this.hub ?? this.opener) : this.hub;
    const done = hub
      ? opening
        ? hub.open(method, args)
        : hub.call(method, args)
      : new Promise((resolve, reject) => {
          const id = ++this.seq;
          const c = { method, args, opening, resolve, reject, sent: false, tokens: [] };
          this.calls.set(id, c);
          // An opening call goes before the account is open; any other once it is.
          if (this.port && (opening || !this.welcomed)) this.send(id, c);
        });
    if (!ENDING.has(method)) return done;
    // This tab reloads itself once the account has ended (unless it did not: refused).
    this.ending = true;
    return done.catch((e) => {
      this.ending = false;
      throw e;
    });
  }

  // --- inside ---------------------------------------------------------------------------------

  send(id, c) {
    const keep = (value) => {
      const token = ++this.tokens;
      this.functions.set(token, value);
      c.tokens.push(token);
      return token;
    };
    const addSignal = (signal) => {
      const token = keep(signal);
      signal.addEventListener("abort", () => this.port?.postMessage({ type: "abort", signal: token }), { once: true });
      return token;
    };
    let args;
    try {
      args = marshal(c.args, keep, addSignal);
    } catch (e) {
      this.calls.delete(id);
      c.reject(e);
      return;
    }
    c.sent = true;
    this.port.postMessage({ type: c.opening ? "static" : "call", id, method: c.method, args });
  }

  forget(c) {
    for (const t of c.tokens) this.functions.delete(t);
    c.tokens = [];
  }

  ask(key) {
    if (this.missing.has(key)) return;
    this.missing.add(key);
    if (!this.port || this.welcomed || this.askQueued) return;
    this.askQueued = true;
    queueMicrotask(() => {
      this.askQueued = false;
      if (!this.port || this.welcomed || !this.missing.size) return;
      this.port.postMessage({ type: "watch", keys: [...this.missing] });
    });
  }

  receive(port, m) {
    if (port !== this.port || typeof m !== "object" || m === null) return;
    switch (m.type) {
      case "welcome": {
        this.take(m.values);
        const welcomed = this.welcomed;
        this.welcomed = null;
        for (const [id, c] of this.calls) if (!c.sent) this.send(id, c);
        if (this.missing.size) port.postMessage({ type: "watch", keys: [...this.missing] });
        this.sayFront();
        welcomed?.();
        // After the view that waited for the welcome has started.
        setTimeout(() => this.port === port && this.refresh());
        break;
      }
      case "update":
        this.take(m.values);
        this.notifyHere = !!m.notify;
        for (const event of m.events) this.emit(event);
        break;
      case "result": {
        this.take(m.values);
        const c = this.calls.get(m.id);
        if (!c) break;
        this.calls.delete(m.id);
        this.forget(c);
        if (m.error) c.reject(toError(m.error));
        else c.resolve(m.value);
        break;
      }
      case "callback":
        this.callBack(m);
        break;
    }
  }

  async callBack({ id, fn, args }) {
    const f = this.functions.get(fn);
    let reply;
    try {
      if (typeof f !== "function") throw new Error("this call is over");
      reply = { type: "callback-result", id, value: await f(...args) };
    } catch (e) {
      reply = { type: "callback-result", id, error: { message: String(e?.message ?? e), code: e?.code } };
    }
    this.port?.postMessage(reply);
  }

  /** Stores copies that came; redraws when one that was missing is among them. */
  take(values) {
    if (!values) return;
    let redraw = false;
    const people = [];
    for (const [key, value] of Object.entries(values)) {
      this.copies.set(key, value);
      if (this.missing.delete(key)) {
        const [method, user] = JSON.parse(key);
        if (method === "profileOf" || method === "profilePicture") people.push(user);
        else redraw = true;
      }
    }
    if (redraw) queueMicrotask(() => this.emit({ type: "contacts" }));
    for (const user of people) queueMicrotask(() => this.emit({ type: "profile", user }));
  }

  /** After a new binding: the connection as it is, and everything drawn again. */
  refresh() {
    let state;
    try {
      state = this.read("connectionState", []);
    } catch {
      state = null;
    }
    if (state?.state) this.emit({ type: "connection", ...state });
    this.emit({ type: "contacts" });
  }

  /** Tells the leading tab whether this one is in front. */
  sayFront() {
    if (!this.port || this.welcomed) return;
    const front = document.visibilityState === "visible" && document.hasFocus();
    this.port.postMessage({ type: "focus", front });
  }

  emit(event) {
    for (const fn of this.listeners) {
      try {
        fn(event);
      } catch (e) {
        console.error(e);
      }
    }
  }
}

for (const method of SYNC_METHODS) {
  EngineHandle.prototype[method] = function (...args) {
    return this.read(method, args);
  };
}
for (const method of ASYNC_METHODS) {
  if (method === "stop") continue;
  EngineHandle.prototype[method] = function (...args) {
    return this.invoke(method, args);
  };
}
