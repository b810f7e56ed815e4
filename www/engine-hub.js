// The engine's side of sharing it between tabs: the SharedWorker (engine-worker.js), or in
// the fallback the tab that leads (engine-session.js), wraps its QpqClient in a hub, which
// serves the page's own views (a leading tab's) and any number of message ports — the
// worker's tabs, or other tabs through tab-link.js. Over a port:
//
// - `hello` lists the synchronous reads the other side wants copies of (SYNC_METHODS, keyed
//   by method and arguments); the hub answers with their values (`welcome`), and after every
//   burst of engine events, and every call, sends the copies that changed followed by the
//   events themselves (`update`), so the other side redraws from fresh copies;
// - `watch` adds copies; `call` runs a method and answers with its result (`result`), after
//   the copies it changed; functions and signals in the arguments are stubs that call back;
// - `focus` says whether that tab is in front (only one tab shows notifications, and none
//   while one is in front: the hub's own page, or with none, in a SharedWorker, the tab whose
//   updates say `notify`); `bye` ends the port;
// - before the account is open (the leading tab asks for a new account or the passphrase),
//   `static` runs QpqClient.register, link, restore or unlock for the other tab's form, one
//   at a time: whichever form is used first opens the account for every tab, and `welcome`
//   follows then.
//
// A call signal this device sends (an answer, a decline) is also given to the other tabs as
// an event from this account's other device, so that a call ringing in several tabs stops
// ringing in the others. signOut, deleteAccount and stop end the hub: every tab starts again.

import { ENDING, SYNC_METHODS, errorData, readKey, toError, unmarshal } from "./engine-rpc.js";

/** How often the copies of who is typing are looked at again (they expire without an event). */
const TYPING_REFRESH_MS = 1_000;

/**
 * @typedef {{ postMessage(data: unknown): void, addEventListener(type: "message", fn: (e: MessageEvent) => void): void,
 *   start?(): void, close?(): void }} PortLike
 */

/** The static methods of QpqClient that open an account, which a form in any tab may use. */
const OPENING = ["register", "link", "restore", "unlock"];

export class EngineHub {
  /** @param {() => void} onEnded the account was signed out, deleted or stopped */
  constructor(onEnded) {
    /** @type {import("/pkg/qpq_web.js").QpqClient | null} the open client (this hub owns it) */
    this.client = null;
    /** @type {typeof import("/pkg/qpq_web.js").QpqClient | null} */
    this.engine = null;
    this.onEnded = onEnded;
    this.ended = false;
    /** Set while signOut, deleteAccount or stop runs: no event or copy goes out meanwhile. */
    this.closing = false;
    this.started = false;
    /** Whether the hub runs in a page (a leading tab) rather than a SharedWorker. */
    this.ownPage = typeof document !== "undefined";
    /** @type {Set<(event: object) => void>} this page's listeners */
    this.listeners = new Set();
    /** @type {Set<PortState>} */
    this.ports = new Set();
    this.queued = [];
    this.flushQueued = false;
    this.typingTimer = null;
    /** The opening calls, one after another. */
    this.gate = Promise.resolve();
    /** @type {Promise<import("/pkg/qpq_web.js").QpqClient>} resolves once the account is open */
    this.opened = new Promise((resolve) => (this.markOpened = resolve));
    /** QpqClient's opening methods for this page's own forms (see OPENING). */
    this.statics = Object.fromEntries(OPENING.map((m) => [m, (...args) => this.open(m, args)]));
  }

  /**
   * The engine is loaded (its class, for the opening methods).
   * @param {typeof import("/pkg/qpq_web.js").QpqClient} engine
   */
  setEngine(engine) {
    this.engine = engine;
  }

  /**
   * The account is open: serve it.
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   */
  attach(client) {
    this.client = client;
    client.onEvent((event) => this.event(event));
    this.typingTimer = setInterval(() => this.flush((key) => key.startsWith('["typing"')), TYPING_REFRESH_MS);
    for (const p of this.ports) if (p.hello) this.welcome(p);
    this.markOpened(client);
  }

  /**
   * Runs an opening method (register, link, restore, unlock) unless the account is open
   * already (code `already_open`); the client it opens is this hub's.
   * @param {string} method
   * @param {unknown[]} args
   */
  open(method, args) {
    const run = this.gate.then(async () => {
      if (this.client) throw Object.assign(new Error("Your account is open already."), { code: "already_open" });
      if (!this.engine || !OPENING.includes(method)) throw new Error(`the engine cannot ${method} now`);
      const client = await this.engine[method](...args);
      this.attach(client);
      return client;
    });
    this.gate = run.catch(() => {});
    return run;
  }

  /** Connects (once). */
  start() {
    if (this.started || this.ended) return;
    this.started = true;
    this.client.start();
  }

  /** @param {(event: object) => void} fn called with every event, in this page */
  onEvent(fn) {
    this.listeners.add(fn);
  }

  /** Forgets this page's listeners (its views were taken down). */
  clearListeners() {
    this.listeners.clear();
  }

  /**
   * Runs a method of the client for this page (`from` null) or a port.
   * @param {string} method
   * @param {unknown[]} args
   * @param {PortState | null} from
   */
  async call(method, args, from = null) {
    if (this.ended || !this.client) {
      throw toError({ message: "quicproquo has stopped in this browser. Reload the page.", code: "ended" });
    }
    if (!ENDING.has(method)) {
      const value = await this.client[method](...args);
      if (method === "sendCallSignal") this.echoCallSignal(args[0], args[1], from);
      this.scheduleFlush();
      return value;
    }
    // deleteAccount takes the client at once: nothing reads it while the account ends.
    this.closing = true;
    try {
      await this.client[method](...args);
    } catch (e) {
      this.closing = false;
      throw e;
    }
    this.end();
    return undefined;
  }

  /** Whether no tab is in front (visible and focused): a notification is then worth showing. */
  noTabInFront() {
    if (this.ownPage && document.visibilityState === "visible" && document.hasFocus()) return false;
    return ![...this.ports].some((p) => p.front);
  }

  /**
   * The port whose tab shows notifications of messages: with no page of its own (in a
   * SharedWorker), the longest-served tab; a leading tab shows them itself.
   */
  notifier() {
    if (this.ownPage) return null;
    for (const p of this.ports) if (p.hello) return p;
    return null;
  }

  /**
   * Serves another tab (or worker) over `port`.
   * @param {PortLike} port
   */
  serve(port) {
    /** @type {PortState} */
    const state = {
      port,
      hello: false,
      watched: new Set(),
      sent: new Map(),
      front: false,
      waits: new Map(),
      signals: new Map(),
      seq: 0,
    };
    this.ports.add(state);
    port.addEventListener("message", (e) => this.receive(state, e.data));
    port.start?.();
  }

  // --- inside ---------------------------------------------------------------------------------

  event(event) {
    if (this.closing) return;
    for (const fn of this.listeners) {
      try {
        fn(event);
      } catch (e) {
        console.error(e);
      }
    }
    if (this.ports.size === 0) return;
    this.queued.push(event);
    this.scheduleFlush();
  }

  /** The other tabs learn that this device answered or declined a call (see the header). */
  echoCallSignal(conversation, signal, from) {
    if (signal?.kind !== "answer" && signal?.kind !== "decline") return;
    const event = { type: "call", conversation, from: this.client.user(), fromDevice: this.client.deviceId(), signal };
    if (from) {
      for (const fn of this.listeners) fn(event);
    }
    for (const p of this.ports) if (p !== from) this.post(p, { type: "update", values: {}, events: [event] });
  }

  end() {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.typingTimer ?? undefined);
    this.onEnded();
  }

  scheduleFlush() {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** Sends every port the copies that changed (those `only` picks), then the queued events. */
  flush(only = null) {
    if (this.ended || this.closing) return;
    const events = only ? [] : this.queued.splice(0);
    const memo = new Map();
    const notifier = events.length ? this.notifier() : null;
    const notify = !!notifier && this.noTabInFront();
    const list = only || !this.client ? null : this.client.conversations();
    for (const p of this.ports) {
      if (list && p.hello) this.watchConversations(p, list);
      const values = this.changed(p, only ? [...p.watched].filter(only) : p.watched, memo);
      if (Object.keys(values).length || events.length) {
        this.post(p, { type: "update", values, events, notify: notify && p === notifier });
      }
    }
  }

  /** The copies among `keys` whose value differs from what `p` last got. */
  changed(p, keys, memo = new Map()) {
    const values = {};
    for (const key of keys) {
      if (!memo.has(key)) {
        const value = this.read(key);
        memo.set(key, { value, json: JSON.stringify(value) });
      }
      const { value, json } = memo.get(key);
      if (p.sent.get(key) === json) continue;
      p.sent.set(key, json);
      values[key] = value;
    }
    return values;
  }

  /** A synchronous read: `{ v }` its value, or `{ e }` what it threw. */
  read(key) {
    try {
      const [method, ...args] = JSON.parse(key);
      if (!SYNC_METHODS.includes(method)) throw new Error(`${method} is not a read`);
      return { v: this.client[method](...args) };
    } catch (e) {
      return { e: errorData(e) };
    }
  }

  post(p, message) {
    try {
      p.port.postMessage(message);
    } catch (e) {
      // A value that cannot be copied: say so rather than leave the other side waiting.
      if (message.type === "result") p.port.postMessage({ type: "result", id: message.id, error: errorData(e) });
      else console.error(e);
    }
  }

  receive(p, m) {
    if (!this.ports.has(p) || typeof m !== "object" || m === null) return;
    switch (m.type) {
      case "hello":
        p.hello = true;
        p.sent.clear();
        p.watched = new Set(m.keys);
        // Not while the account ends: every tab starts again then.
        if (this.client && !this.closing && !this.ended) this.welcome(p);
        break;
      case "static":
        this.answer(p, m, true);
        break;
      case "watch":
        if (!this.client) break;
        for (const k of m.keys) p.watched.add(k);
        this.post(p, { type: "update", values: this.changed(p, m.keys), events: [] });
        break;
      case "call":
        this.answer(p, m);
        break;
      case "abort":
        p.signals.get(m.signal)?.abort();
        break;
      case "callback-result": {
        const wait = p.waits.get(m.id);
        p.waits.delete(m.id);
        if (m.error) wait?.reject(toError(m.error));
        else wait?.resolve(m.value);
        break;
      }
      case "focus":
        p.front = !!m.front;
        break;
      case "bye":
        this.drop(p);
        break;
    }
  }

  /** The copies the other side asked for, once the account is open. */
  welcome(p) {
    this.watchConversations(p);
    this.post(p, { type: "welcome", values: this.changed(p, p.watched) });
  }

  /**
   * Every conversation's summary is copied, those made since too: views look them up by id
   * as they draw (a chat just started is opened at once).
   */
  watchConversations(p, list = this.client.conversations()) {
    for (const c of list) p.watched.add(readKey("conversation", [c.id]));
  }

  /** Runs a call for the other side (`opening`: an opening method, for its form). */
  async answer(p, { id, method, args }, opening = false) {
    let reply;
    try {
      const real = unmarshal(
        args ?? [],
        (token) => this.stub(p, token),
        (token, aborted) => this.signal(p, token, aborted),
      );
      if (opening) {
        await this.open(method, real);
        // The client stays here; the other side learns it is open from `welcome`.
        reply = { type: "result", id, value: true };
      } else {
        const known = typeof method === "string" && !SYNC_METHODS.includes(method);
        if (!this.client || !known || typeof this.client[method] !== "function") {
          throw new Error(`the engine has no method ${method}`);
        }
        reply = { type: "result", id, value: await this.call(method, real, p) };
      }
    } catch (e) {
      reply = { type: "result", id, error: errorData(e) };
    }
    if (!this.ports.has(p)) return;
    // The copies this call changed first, so that the caller redraws from them.
    if (this.client && !this.ended && !this.closing && !opening) {
      this.watchConversations(p);
      reply.values = this.changed(p, p.watched);
    }
    this.post(p, reply);
  }

  /** A function of the other side's: calling it asks that side and resolves with its answer. */
  stub(p, token) {
    return (...args) => {
      const id = ++p.seq;
      const answer = new Promise((resolve, reject) => p.waits.set(id, { resolve, reject }));
      answer.catch(() => {}); // a progress callback's answer is not awaited
      this.post(p, { type: "callback", id, fn: token, args });
      return answer;
    };
  }

  /** An AbortSignal that the other side aborts. */
  signal(p, token, aborted) {
    const controller = new AbortController();
    if (aborted) controller.abort();
    p.signals.set(token, controller);
    return controller.signal;
  }

  /** The other side is gone: its transfers stop, its callbacks fail. */
  drop(p) {
    this.ports.delete(p);
    for (const c of p.signals.values()) c.abort();
    for (const w of p.waits.values()) w.reject(new Error("the tab that asked for this was closed"));
    p.waits.clear();
    p.port.close?.();
  }
}

/**
 * @typedef {{ port: PortLike, hello: boolean, watched: Set<string>, sent: Map<string, string>, front: boolean,
 *   waits: Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>,
 *   signals: Map<number, AbortController>, seq: number }} PortState
 */
