// The tabs of one browser profile (or of one widget's storage partition) talking over the
// BroadcastChannel "qpq-engine". The leading tab says what it is doing (`leader`: starting,
// open, signup, locked) whenever that changes and whenever a tab asks (`who`); `ended` tells
// every tab to start again (the account was signed out, deleted or locked). Each other tab
// talks to the leading one through a port of its own: messages on the channel addressed from
// one tab id to another, which engine-hub.js and engine-handle.js use like a MessagePort.
//
// Each tab holds a Web Lock named after its id for as long as it lives; the leading tab asks
// for that lock of every tab it serves and, once granted (the tab is gone: closed, reloaded or
// crashed), ends that tab's port. No unload handler is needed (one would hold up the release
// of the engine lock when a tab closes, which a push arriving then waits for).

import { TAB_LOCK } from "./engine-lock.js";

const CHANNEL = "qpq-engine";

/** @typedef {"starting" | "open" | "signup" | "locked"} LeaderState */

export class TabLink {
  constructor() {
    this.id = crypto.randomUUID();
    this.channel = new BroadcastChannel(CHANNEL);
    /** @type {Map<string, ChannelPort>} ports by the other tab's id */
    this.ports = new Map();
    /** @type {LeaderState | null} set while this tab leads */
    this.state = null;
    this.onLeader = (_leader, _state) => {};
    this.onEnded = () => {};
    /** @type {((port: ChannelPort) => void) | null} set while this tab leads */
    this.onPort = null;
    /** Resolves once this tab holds its own lock (before that it talks to no other tab). */
    this.alive = new Promise((resolve) => {
      navigator.locks.request(TAB_LOCK + this.id, () => {
        resolve();
        return new Promise(() => {});
      });
    });
    this.alive.then(() => (this.channel.onmessage = (e) => this.receive(e.data)));
  }

  /** Asks the leading tab, if there is one, to say what it is doing. */
  ask() {
    this.alive.then(() => this.channel.postMessage({ kind: "who" }));
  }

  /**
   * This tab leads now: it says `state`, and from now on answers `who` and accepts ports.
   * @param {LeaderState} state
   */
  lead(state) {
    this.state = state;
    this.channel.postMessage({ kind: "leader", leader: this.id, state });
  }

  /**
   * Takes the ports other tabs open to this one (once it leads).
   * @param {(port: ChannelPort) => void} fn
   */
  acceptPorts(fn) {
    this.onPort = fn;
  }

  /** Tells every other tab that the account ended here; this tab stops answering `who`. */
  ended() {
    this.state = null;
    this.channel.postMessage({ kind: "ended" });
  }

  /**
   * A port to the tab `other` (the leading one).
   * @param {string} other
   */
  portTo(other) {
    this.ports.get(other)?.close();
    const port = new ChannelPort(this, other);
    this.ports.set(other, port);
    return port;
  }

  receive(m) {
    if (typeof m !== "object" || m === null) return;
    switch (m.kind) {
      case "who":
        if (this.state) this.lead(this.state);
        break;
      case "leader":
        if (!this.state) this.onLeader(m.leader, m.state);
        break;
      case "ended":
        this.onEnded();
        break;
      case "port": {
        if (m.to !== this.id) return;
        let port = this.ports.get(m.from);
        if (!port && this.onPort && m.data?.type === "hello") {
          port = new ChannelPort(this, m.from);
          this.ports.set(m.from, port);
          this.onPort(port);
          const gone = port;
          navigator.locks.request(TAB_LOCK + m.from, () => gone.deliver({ type: "bye" }));
        }
        port?.deliver(m.data);
        break;
      }
    }
  }
}

/** One tab's end of its conversation with another, shaped like a MessagePort. */
class ChannelPort extends EventTarget {
  /** @param {TabLink} link @param {string} other */
  constructor(link, other) {
    super();
    this.link = link;
    this.other = other;
    this.closed = false;
  }

  postMessage(data) {
    if (this.closed) throw new Error("this port is closed");
    this.link.channel.postMessage({ kind: "port", from: this.link.id, to: this.other, data });
  }

  deliver(data) {
    if (!this.closed) this.dispatchEvent(new MessageEvent("message", { data }));
  }

  start() {}

  close() {
    this.closed = true;
    if (this.link.ports.get(this.other) === this) this.link.ports.delete(this.other);
  }
}
