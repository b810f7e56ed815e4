// The app once signed in: the message requests and the conversation list beside (or, on a
// phone, instead of) the open conversation, the connection indicator, and the dialogs. It
// reads everything from the engine and, once per burst of engine events, draws only what the
// events named: the list entries of the conversations named, the open conversation's header
// and panels when it changed, and the rows of its log whose messages came, changed or went.
// Contacts or a profile changing redraws everything (names and states show anywhere).

import { byId, h, setText } from "../dom.js";
import { asSentence, describeError } from "../errors.js";
import { showScreen } from "./screens.js";
import { ConnectionStatus } from "./connection-status.js";
import { ConversationList } from "./conversation-list.js";
import { MembersPanel } from "./members-panel.js";
import { MessageLog } from "./message-log.js";
import { GroupInfo, wireDeleteAccount } from "./group-info.js";
import { SafetyNumberDialog } from "./safety-number.js";
import { Composer } from "./composer.js";
import { FileTransfers } from "./files.js";
import { wireStartDialogs } from "./start-dialogs.js";
import { wireTransportSelect } from "../transport-setting.js";
import { wireNotifications } from "./notifications.js";
import { CallPanel } from "./call-panel.js";
import { DevicesDialog } from "./devices.js";
import { wireIdleLock } from "../idle-lock.js";
import { notifyConversation } from "../notify.js";
import { otherPerson } from "../people.js";
import { MessageRequests, RequestActions } from "./requests.js";
import { ContactsDialog } from "./contacts.js";
import { ChatBanner } from "./chat-banner.js";
import { ChatHeading } from "./chat-heading.js";
import { ProfileDialog } from "./profile-dialog.js";
import { Profiles } from "../profiles.js";
import { shortName } from "../format.js";

/** The URL fragment naming the open conversation (the service worker reads it). */
const OPEN_PREFIX = "#conversation=";

/** How long a notice stays on screen. */
const NOTICE_MS = 10_000;
/** A "typing" start is renewed this often while the person keeps typing… */
const TYPING_RENEW_MS = 4_000;
/** …and a stop is sent after this long without a keystroke. */
const TYPING_IDLE_MS = 3_000;
/** Messages arriving this close together in a background tab make one notification. */
const NOTIFY_GATHER_MS = 300;

export class ChatApp {
  /** @param {import("../engine-handle.js").EngineHandle} client the engine, in this tab or another */
  constructor(client) {
    this.client = client;
    this.stopped = false;
    this.aborter = new AbortController();
    const signal = this.aborter.signal;
    /** @type {string | null} */
    this.selectedId = null;
    /** What the current burst of events asks to draw (see `burst`); null between bursts. */
    this.dirty = null;
    /** The members of the open conversation when its log was drawn (a message's "Read" depends on them). */
    this.logMembers = "";
    this.noticeTimer = null;
    /** Conversations with messages to notify of (this tab in the background): first index. */
    this.toNotify = new Map();
    this.notifyTimer = null;

    this.root = byId("screen-app");
    this.placeholder = byId("chat-placeholder");
    this.chat = byId("chat-open");
    this.removedNotice = byId("removed-notice");
    this.notice = byId("notice");

    this.profiles = new Profiles(client, signal);
    this.heading = new ChatHeading(client, this.profiles);
    this.list = new ConversationList(byId("conversation-list"), byId("conversation-empty"), (id) => this.open(id), this.profiles);
    const requestActions = new RequestActions(client, (sentence) => this.showNotice(sentence));
    this.requests = new MessageRequests(client, { section: byId("requests"), list: byId("request-list") }, requestActions, (id) => this.open(id));
    this.contacts = new ContactsDialog(client, byId("contacts-open"), signal);
    this.files = new FileTransfers(client, { input: byId("composer-file"), uploads: byId("uploads") }, signal);
    this.log = new MessageLog(byId("messages"), (conversationId, m) => this.files.body(conversationId, m));
    this.members = new MembersPanel(client, this.profiles, signal);
    this.connection = new ConnectionStatus(byId("connection"));
    this.composer = new Composer(client, { conversation: () => this.selectedId, beforeSend: () => this.stopTyping() }, signal);
    this.input = this.composer.input;
    this.banner = new ChatBanner(this.removedNotice, requestActions, client.user());
    this.log.setActions(this.composer.actions());
    this.safety = new SafetyNumberDialog(client, signal);
    this.info = new GroupInfo(client, this.root.querySelector(".chat-header"), this.safety, this.profiles, signal);
    this.callPanel = new CallPanel(client, byId("call"), this.root.querySelector(".chat-header"), this.profiles, signal);
    this.profileDialog = new ProfileDialog(client, this.root.querySelector(".topbar"), signal);
    this.devices = new DevicesDialog(client, this.root.querySelector(".topbar"), () => (this.stopped = true), signal);
    wireIdleLock(client, () => (this.stopped = true), signal);
    wireDeleteAccount(client, this.root.querySelector(".topbar"), () => (this.stopped = true), signal);
    this.typingLine = h("p", { class: "typing hint", role: "status", "aria-live": "polite" });
    this.composer.form.before(this.typingLine);
    this.typingSentAt = 0;
    this.typingIdle = null;
    this.typingTick = setInterval(() => this.renderTyping(), 1_000);
    signal.addEventListener("abort", () => {
      clearInterval(this.typingTick);
      clearTimeout(this.typingIdle);
    });
    this.input.addEventListener("input", () => this.typed(), { signal });
    wireStartDialogs(client, (id) => this.open(id), (user) => this.safety.open(user), signal);
    wireTransportSelect(byId("transport-select"), signal);
    this.notifications = wireNotifications(client, this.root.querySelector(".topbar"), signal);
    // A click on a notification asks the page to open its conversation.
    navigator.serviceWorker?.addEventListener(
      "message",
      (e) => {
        if (e.data?.type === "open-conversation" && e.data.conversation && this.client.conversation(e.data.conversation)) {
          this.open(e.data.conversation);
        }
      },
      { signal },
    );

    byId("chat-back").addEventListener("click", () => this.open(null), { signal });
    document.addEventListener("visibilitychange", () => (this.burst().chat = true), { signal });

    client.onEvent((event) => this.onEvent(event));
  }

  /** Shows the app and connects. */
  start() {
    setText(byId("me-name"), this.client.user());
    const asked = location.hash.startsWith(OPEN_PREFIX) ? location.hash.slice(OPEN_PREFIX.length) : null;
    this.open(asked && this.client.conversation(asked) ? asked : null);
    showScreen("app");
    this.client.start();
    // Until the first connection event ("not started" is not worth showing).
    this.connection.show({ state: "connecting" });
  }

  /** Stops reacting (the account closed: this tab leads now and it is locked, or gone). */
  destroy() {
    this.stopped = true;
    this.aborter.abort();
    this.connection.stopCountdown();
    clearTimeout(this.noticeTimer);
    clearTimeout(this.notifyTimer);
    for (const d of document.querySelectorAll("dialog[open]")) d.close();
  }

  /**
   * A message was added while this tab may be in the background. A tab runs the engine, so
   * no push reaches the service worker: the tab running it shows the notification a push would
   * have (notify.js), unless one of the tabs is visible and focused, where the person sees
   * the message itself.
   */
  noteForNotification(conversationId, index) {
    // Whether this tab notifies first: asking for the permission is a round trip to the browser.
    if (!this.client.notifiesHere()) return;
    if (typeof Notification !== "function" || Notification.permission !== "granted") return;
    this.toNotify.set(conversationId, Math.min(this.toNotify.get(conversationId) ?? index, index));
    clearTimeout(this.notifyTimer);
    this.notifyTimer = setTimeout(() => this.notifyInBackground().catch(() => {}), NOTIFY_GATHER_MS);
  }

  async notifyInBackground() {
    const batches = [...this.toNotify];
    this.toNotify.clear();
    const registration = await navigator.serviceWorker?.getRegistration("/");
    if (!registration || this.stopped) return;
    for (const [id, from] of batches) {
      const c = this.client.conversation(id);
      const messages = c
        ? this.client.historySince(id, from).filter((m) => !m.outgoing && (m.kind === "text" || m.kind === "file"))
        : [];
      if (messages.length) await notifyConversation(registration, this.client.user(), c, messages);
    }
  }

  /** @param {import("/pkg/qpq_web.js").QpqEvent} event */
  onEvent(event) {
    if (this.stopped) return;
    switch (event.type) {
      case "connection":
        this.connection.show(event);
        if (event.state === "online") this.notifications.refresh().catch(() => {});
        break;
      case "contacts":
        this.contacts.refresh();
        this.burst().all = true;
        break;
      case "conversation":
        this.burst().entries.add(event.id);
        if (event.id === this.selectedId) this.burst().chat = true;
        break;
      case "message":
        // The entry's preview shows the last message, which may be this one.
        this.burst().entries.add(event.conversation);
        if (event.conversation === this.selectedId) this.noteRow(event.index, event.change);
        if (event.change !== "added") this.files.prune();
        else this.noteForNotification(event.conversation, event.index);
        break;
      case "notice":
        this.showNotice(asSentence(event.text));
        break;
      case "history":
        this.showNotice(`Bringing over your earlier messages from your other device… ${Math.floor((100 * event.done) / event.total)}%`);
        break;
      case "typing":
        if (event.conversation === this.selectedId) this.renderTyping();
        break;
      case "call":
        this.callPanel.onSignal(event);
        break;
      case "profile":
        // Names, pictures and statuses are drawn in the list, the heading and the member lists.
        this.profiles.changed(event.user);
        this.burst().all = true;
        break;
    }
  }

  /**
   * What the current burst of events asks to draw, drawn once the burst is over: `all`
   * (everything), `entries` (ids of conversations whose list entry to draw), `chat` (the open
   * conversation's header, panels and composer) and `rows` (entries of its log: history index
   * → "added", "changed" or "removed").
   * @returns {{ all: boolean, entries: Set<string>, chat: boolean, rows: Map<number, string> }}
   */
  burst() {
    if (!this.dirty) {
      this.dirty = { all: false, entries: new Set(), chat: false, rows: new Map() };
      queueMicrotask(() => this.drawBurst());
    }
    return this.dirty;
  }

  /** A message event of the open conversation: its row is drawn with the burst. */
  noteRow(index, change) {
    const rows = this.burst().rows;
    // Added and then changed in the same burst: still a new row.
    if (change === "changed" && rows.get(index) === "added") return;
    rows.set(index, change);
  }

  drawBurst() {
    const d = this.dirty;
    this.dirty = null;
    if (this.stopped || !d) return;
    if (d.all) {
      this.renderList();
      this.renderChat({ force: true });
      return;
    }
    if (d.entries.size) this.renderList(d.entries);
    if (d.chat || d.rows.size) this.renderChat({ frame: d.chat, rows: d.rows });
  }

  /** Opens a conversation (null: back to the list). */
  open(id) {
    const switched = id !== this.selectedId;
    this.selectedId = id;
    this.root.dataset.view = id ? "chat" : "list";
    history.replaceState(history.state, "", id ? `${OPEN_PREFIX}${id}` : location.pathname + location.search);
    this.placeholder.hidden = !!id;
    this.chat.hidden = !id;
    if (switched) {
      this.composer.clear();
      this.stopTyping();
    }
    if (!id) {
      this.files.show(null, false);
      this.log.clear();
      this.members.show(null);
      this.info.show(null);
      this.banner.show(null, null);
      this.callPanel.show(null);
    } else {
      this.renderChat();
      if (switched && !this.input.disabled) this.input.focus();
    }
    this.renderList();
  }

  /**
   * Draws the message requests and the conversation list (in the engine's order) and the
   * unread count in the title: every entry, or with `only` (conversation ids) only those
   * entries, the others just kept in place.
   * @param {Set<string> | null} [only]
   */
  renderList(only = null) {
    const all = this.client.conversations();
    const conversations = all.filter((c) => !c.request);
    this.requests.render(all.filter((c) => c.request), this.selectedId, only);
    this.list.render(conversations, this.selectedId, only);
    const unread = conversations.reduce((n, c) => n + c.unread, 0);
    const title = unread > 0 ? `(${unread}) quicproquo` : "quicproquo";
    if (document.title !== title) document.title = title;
  }

  /**
   * Draws the open conversation: with `frame`, its header, panels, banner and composer (and
   * marks it read); its log's `rows` that events named (history index → change), or with none
   * the whole log; `force` draws the member lists even though the members are the same
   * (names or pictures changed).
   * @param {{ frame?: boolean, rows?: Map<number, string> | null, force?: boolean }} [o]
   */
  renderChat({ frame = true, rows = null, force = false } = {}) {
    const id = this.selectedId;
    if (!id) return;
    const c = this.client.conversation(id);
    // A request deleted, or put away by a block, is no longer listed: close it.
    if (!c || (c.request && !this.client.conversations().some((x) => x.id === id))) {
      this.open(null);
      return;
    }
    if (frame) this.renderFrame(c, force);
    this.renderLog(c, rows);
    if (!frame) return;
    this.renderTyping();
    // Opening a request does not read it: its sender learns nothing until it is accepted.
    if (c.unread > 0 && !c.request && document.visibilityState === "visible") this.markRead(id);
  }

  /** The open conversation's header, panels, banner and composer. */
  renderFrame(c, force) {
    this.heading.show(c, force);
    // A request is read-only until accepted; a direct chat with a blocked person takes nothing.
    const other = c.kind === "direct" ? otherPerson(c, this.client.user()) : null;
    const blocked = other && this.client.blockedUsers().includes(other) ? other : null;
    const writable = c.active && !c.request && !blocked;
    this.members.show(c, force);
    this.info.show(c, force);
    this.callPanel.show(writable ? c : { ...c, active: false });
    this.banner.show(c, blocked);
    if (this.removedNotice.hidden !== c.active) this.removedNotice.hidden = c.active;
    this.composer.setEnabled(writable);
    this.files.show(c.id, writable);
  }

  /**
   * The open conversation's log: only the rows in `rows` when that is enough, else all of it —
   * opened, written to or not any more, its members changed (whether a message was read by
   * everyone depends on them), or the log not ending with the conversation's last message
   * (its history brought over from another device and numbered anew).
   * @param {import("/pkg/qpq_web.js").ConversationView} c
   * @param {Map<number, string> | null} rows
   */
  renderLog(c, rows) {
    const active = c.active && !c.request;
    const members = c.members.join(" ");
    const same = this.log.conversationId === c.id && this.log.active === active && this.logMembers === members;
    this.logMembers = members;
    if (same && rows && this.log.apply(rows, (index) => this.client.message(c.id, index)) && this.log.endsWith(c.lastMessage)) return;
    this.log.render(c.id, this.client.history(c.id), c.kind, active);
  }

  async markRead(id) {
    try {
      await this.client.markRead(id);
    } catch (e) {
      this.showNotice(describeError(e));
    }
  }

  /** A keystroke in the composer: say "typing" (renewed now and then), and stop when idle. */
  typed() {
    const id = this.selectedId;
    if (!id) return;
    clearTimeout(this.typingIdle);
    if (!this.input.value.trim()) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_RENEW_MS) {
      this.typingSentAt = now;
      this.client.setTyping(id, true).catch(() => {});
    }
    this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingIdle);
    if (!this.typingSentAt || !this.selectedId) return;
    this.typingSentAt = 0;
    this.client.setTyping(this.selectedId, false).catch(() => {});
  }

  renderTyping() {
    if (this.stopped) return;
    const id = this.selectedId;
    const who = id ? this.client.typing(id) : [];
    const names = who.map((u) => this.profiles.of(u)?.name || shortName(u));
    const text =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
    setText(this.typingLine, text);
  }

  showNotice(text) {
    setText(this.notice, text);
    this.notice.classList.add("visible");
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.notice.classList.remove("visible");
      setText(this.notice, "");
    }, NOTICE_MS);
  }
}
