// The embedded chat (embed.html): one 1:1 conversation with the widget's peer, drawn by the
// app's own message log, composer behaviour and file transfers. The chat starts once the
// engine is online (a new chat needs the peer's key packages) and reopens from storage
// afterwards. Messages are read only while the person can see them: the widget's panel is
// open and the page is visible; otherwise the unread count goes to the host page.
//
// The heading names the peer by the display name of their verified profile, once they shared
// one, with their address beside it (a display name is chosen by its owner and proves
// nothing). Message requests from anyone else are not shown here, only counted in one line:
// opened in a tab of its own, the widget is the app's account, and the line links to the app;
// framed by another site, the account is that site's (storage is partitioned), which the app
// cannot open, and the line only says that this chat shows the peer alone.

import { byId, h, setText } from "../dom.js";
import { asSentence, describeError } from "../errors.js";
import { Profiles } from "../profiles.js";
import { ConnectionStatus } from "./connection-status.js";
import { Composer } from "./composer.js";
import { FileTransfers } from "./files.js";
import { MessageLog } from "./message-log.js";
import { showScreen } from "./screens.js";

/** How long a notice stays on screen. */
const NOTICE_MS = 10_000;

export class EmbedChat {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {string} peer whom the widget connects with (`name` or `name@domain`)
   * @param {{ origin: string | null, visible: boolean, onVisible: (v: boolean) => void,
   *           send: (m: object) => void }} host the embedding page
   */
  constructor(client, peer, host) {
    this.client = client;
    this.host = host;
    this.stopped = false;
    this.aborter = new AbortController();
    const signal = this.aborter.signal;
    const me = client.user();
    // "support" means support on this user's own server.
    this.peer = peer.includes("@") ? peer : `${peer}${me.slice(me.lastIndexOf("@"))}`;
    /** @type {string | null} */
    this.conversationId = null;
    this.starting = false;
    /** Why the chat could not start (shown until it does), and the engine's latest notice. */
    this.problem = "";
    this.notice = "";
    this.noticeTimer = null;
    this.reported = 0;
    this.pending = false;
    /** What the next draw redraws of the log: the rows that message events named (history
     * index → "added", "changed" or "removed"), or all of it. */
    this.logRows = new Map();
    this.wholeLog = true;
    /** The chat's members when its log was drawn (a message's "Read" depends on them). */
    this.logMembers = "";

    this.state = byId("embed-state");
    this.title = byId("embed-title");
    this.peerLine = byId("embed-peer");
    this.requestsLine = byId("embed-requests");
    /** What the requests line shows (count and wording), to redraw it only when it changes. */
    this.requestsDrawn = "";
    this.profiles = new Profiles(client, signal);
    this.connection = new ConnectionStatus(byId("connection"));
    this.files = new FileTransfers(client, { input: byId("composer-file"), uploads: byId("uploads") }, signal);
    this.log = new MessageLog(byId("messages"), (conversationId, m) => this.files.body(conversationId, m));
    this.composer = new Composer(client, { conversation: () => this.conversationId }, signal);
    this.log.setActions(this.composer.actions());
    document.addEventListener("visibilitychange", () => this.schedule(), { signal });
    host.onVisible = () => this.schedule();
    client.onEvent((event) => this.onEvent(event));
  }

  /** Shows the chat and connects. */
  start() {
    setText(
      byId("embed-me"),
      this.host.origin
        ? `You are ${this.client.user()} on ${this.host.origin}. This site's chat has an account of its own, kept in this browser.`
        : `You are ${this.client.user()}.`,
    );
    this.conversationId = this.findChat();
    this.render();
    showScreen("app");
    this.client.start();
    this.connection.show({ state: "connecting" });
  }

  /** Stops reacting (the account closed: this tab leads now and it is locked, or gone). */
  destroy() {
    this.stopped = true;
    this.aborter.abort();
    this.connection.stopCountdown();
    clearTimeout(this.noticeTimer);
    for (const d of document.querySelectorAll("dialog[open]")) d.close();
  }

  /** The stored 1:1 chat with the peer, if there is one. */
  findChat() {
    const c = this.client
      .conversations()
      .find((c) => c.kind === "direct" && c.active && c.members.includes(this.peer) && c.members.length <= 2);
    return c?.id ?? null;
  }

  /** Starts the chat with the peer (it needs a connection); tried again at the next one. */
  async startChat() {
    if (this.conversationId || this.starting) return;
    this.starting = true;
    this.schedule();
    try {
      this.conversationId = await this.client.startChat(this.peer);
      this.problem = "";
    } catch (e) {
      this.problem = describeError(e);
    } finally {
      this.starting = false;
      this.schedule();
    }
  }

  /** @param {import("/pkg/qpq_web.js").QpqEvent} event */
  onEvent(event) {
    if (this.stopped) return;
    switch (event.type) {
      case "connection":
        this.connection.show(event);
        if (event.state === "online") this.startChat();
        break;
      case "profile":
        // Senders' names are in the rows.
        this.wholeLog = true;
        this.schedule();
        break;
      case "conversation":
      case "contacts":
        this.schedule();
        break;
      case "message":
        if (event.conversation === this.conversationId) {
          // Added and then changed in the same burst: still a new row.
          if (!(event.change === "changed" && this.logRows.get(event.index) === "added")) this.logRows.set(event.index, event.change);
          this.schedule();
        }
        if (event.change !== "added") this.files.prune();
        break;
      case "notice":
        this.showNotice(asSentence(event.text));
        break;
    }
  }

  /** Redraws once the current burst of events is over (of the log, only what events named). */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      if (!this.stopped) this.render();
    });
  }

  render() {
    const id = this.conversationId ?? this.findChat();
    this.conversationId = id;
    this.renderPeer();
    this.renderRequests();
    const c = id ? this.client.conversation(id) : null;
    const active = !!c?.active;
    this.composer.setEnabled(active);
    this.files.show(id, active);
    const waiting = this.starting ? `Starting the chat with ${this.peer}…` : "Connecting to start the chat…";
    const line = this.notice || this.problem || (c ? "" : waiting);
    setText(this.state, line);
    this.state.hidden = !line;
    if (!c) {
      this.log.clear();
      this.report(0);
      return;
    }
    this.renderLog(c);
    const seen = this.host.visible && document.visibilityState === "visible";
    if (c.unread > 0 && seen) this.markRead(id);
    this.report(seen ? 0 : c.unread);
  }

  /**
   * The chat's log: only the rows that message events named when that is enough, else all
   * of it (see ChatApp.renderLog).
   * @param {import("/pkg/qpq_web.js").ConversationView} c
   */
  renderLog(c) {
    const rows = this.wholeLog ? null : this.logRows;
    this.logRows = new Map();
    this.wholeLog = false;
    const members = c.members.join(" ");
    const same = this.log.conversationId === c.id && this.log.active === c.active && this.logMembers === members;
    this.logMembers = members;
    if (same && rows && this.log.apply(rows, (index) => this.client.message(c.id, index)) && this.log.endsWith(c.lastMessage)) return;
    this.log.render(c.id, this.client.history(c.id), c.kind, c.active);
  }

  /** The heading: the peer's verified display name, else their address; the address beside a name. */
  renderPeer() {
    const profile = this.profiles.of(this.peer);
    const name = profile?.name || this.peer;
    setText(this.title, `Chat with ${name}`);
    const notes = [];
    if (name !== this.peer) notes.push(this.peer);
    if (profile?.forged) notes.push("Profile not verified");
    setText(this.peerLine, notes.join(" · "));
    this.peerLine.hidden = notes.length === 0;
  }

  /** The line counting message requests from other people than the peer (hidden when none). */
  renderRequests() {
    const count = this.client.conversations().filter((c) => c.request && c.id !== this.conversationId).length;
    // This site's account (framed) is not the app's: the app at our address cannot show them.
    const name = this.profiles.name(this.peer);
    const framedText = this.host.origin ? `from other people; this chat shows only ${name}.` : "";
    const key = `${count} ${framedText}`;
    if (key === this.requestsDrawn) return;
    this.requestsDrawn = key;
    this.requestsLine.hidden = count === 0;
    const requests = `${count} message ${count === 1 ? "request" : "requests"}`;
    if (count === 0) this.requestsLine.replaceChildren();
    else if (framedText) this.requestsLine.replaceChildren(`${requests} ${framedText}`);
    else {
      // A tab of its own: the same account as the app at our address, which lists them.
      const app = new URL("/", location.href).href;
      const link = h("a", { href: app, target: "_blank", rel: "noopener", text: "open quicproquo" });
      this.requestsLine.replaceChildren(`${requests} — `, link, " to read them");
    }
  }

  /** Tells the host page how many messages wait unread (only when the number changes). */
  report(count) {
    if (count === this.reported) return;
    this.reported = count;
    this.host.send({ type: "unread", count });
  }

  async markRead(id) {
    try {
      await this.client.markRead(id);
    } catch (e) {
      this.showNotice(describeError(e));
    }
  }

  /** Shows what the engine said (a safety number changed, …) above the composer for a while. */
  showNotice(text) {
    this.notice = text;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.notice = "";
      this.schedule();
    }, NOTICE_MS);
    this.schedule();
  }
}
