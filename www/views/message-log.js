// The history of the open conversation. Message text is put into the page as text only
// (a Text node inside a bidi-isolated, auto-direction element), never parsed as HTML.
//
// Rows are kept by message id. `render` shows a whole history (a conversation opened, or
// something that may touch every row); `apply` draws only the entries that message events
// named — a row added at the end, one row's status line, one row drawn again, one removed —
// and the replies that quote them. Drawing never asks the page for its layout: whether the
// reader is at the latest message is kept from the log's scroll events, and scrolling to it
// waits for the next frame, when the page is laid out anyway.

import { h, setText } from "../dom.js";
import { readersText, statusText, timeText } from "../format.js";
import { messageActions, quoteBlock, reactionBar } from "./message-actions.js";

/** How close to the bottom (px) still counts as "reading the latest". */
const STICK_TO_BOTTOM_PX = 48;

/**
 * @typedef {import("/pkg/qpq_web.js").MessageView} MessageView
 * @typedef {{ el: HTMLElement, status: HTMLElement | null, m: MessageView, key: string, content: string }} Row
 * @typedef {"added" | "changed" | "removed"} Change
 */

export class MessageLog {
  /**
   * @param {HTMLElement} el the log element (role=log, named "Messages")
   * @param {(conversationId: string, m: MessageView) => HTMLElement} fileBody
   *   draws the body of a file message
   */
  constructor(el, fileBody) {
    this.el = el;
    this.fileBody = fileBody;
    /** What the message menu does (see `setActions`). */
    this.actions = { react() {}, reply() {}, edit() {}, remove() {} };
    this.el.replaceChildren();
    this.conversationId = null;
    this.kind = "direct";
    this.active = true;
    /** The rows, by message id. @type {Map<string, Row>} */
    this.rows = new Map();
    /** Message ids by history index (events name entries by index). @type {Map<number, string>} */
    this.ids = new Map();
    /** The last time drawn in words, and its minute (see `time`). */
    this.timeOf = "";
    this.timeWords = "";
    /** Whether the reader is at the latest message (so new rows keep them there). */
    this.pinned = true;
    this.scrollQueued = false;
    this.el.addEventListener(
      "scroll",
      () => {
        // While a scroll to the end waits for its frame, rows added meanwhile are not a reader
        // scrolling up.
        if (!this.scrollQueued) this.pinned = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < STICK_TO_BOTTOM_PX;
      },
      { passive: true },
    );
  }

  /**
   * Shows `history` (oldest first) for `conversationId`, keeping the rows already drawn.
   * @param {string} conversationId
   * @param {MessageView[]} history
   * @param {"direct" | "group"} kind
   * @param {boolean} [active] false once this device left or was removed
   */
  render(conversationId, history, kind, active = true) {
    if (conversationId !== this.conversationId || kind !== this.kind || active !== this.active) {
      this.clear();
      this.conversationId = conversationId;
      this.kind = kind;
      this.active = active;
    }
    const present = new Set(history.map((m) => m.id));
    const gone = [...this.rows.keys()].filter((id) => !present.has(id));
    this.draw(history, gone, true);
  }

  /**
   * Draws what message events named: `changes` maps history indices to what happened to them;
   * `read(index)` gives an entry as it is now. Returns false when that is not enough (an entry
   * not at the end, or the history numbered anew): the caller then `render`s it all.
   * @param {Map<number, Change>} changes
   * @param {(index: number) => MessageView | undefined} read
   */
  apply(changes, read) {
    const messages = [];
    const gone = [];
    const last = this.lastIndex();
    for (const [index, change] of changes) {
      const id = this.ids.get(index);
      if (change === "removed") {
        if (id) gone.push(id);
        continue;
      }
      const m = read(index);
      if (!m || (id ? id !== m.id : index <= last)) return false;
      messages.push(m);
    }
    // A reply shows the message it quotes: draw it again when that changed or went.
    const touched = new Set([...messages.map((m) => m.id), ...gone]);
    for (const row of this.rows.values()) {
      const quoted = row.m.replyTo?.id;
      if (!quoted || !touched.has(quoted) || touched.has(row.m.id)) continue;
      const m = read(row.m.index);
      if (!m || m.id !== row.m.id) return false;
      messages.push(m);
    }
    messages.sort((a, b) => a.index - b.index);
    this.draw(messages, gone, false);
    return true;
  }

  /** Whether the last row is `m` (the conversation's last message), at its index. */
  endsWith(m) {
    const id = this.el.lastElementChild?.dataset.id;
    if (!m) return !id;
    return id === m.id && this.rows.get(id)?.m.index === m.index;
  }

  /**
   * Sets what the message menu does.
   * @param {{ react: Function, reply: Function, edit: Function, remove: Function }} actions
   */
  setActions(actions) {
    this.actions = actions;
  }

  clear() {
    this.el.replaceChildren();
    this.rows.clear();
    this.ids.clear();
    this.conversationId = null;
    this.pinned = true;
  }

  /** Shows the latest message, at the next frame (reading the layout now would make it). */
  scrollToEnd() {
    this.pinned = true;
    if (this.scrollQueued) return;
    this.scrollQueued = true;
    requestAnimationFrame(() => {
      this.scrollQueued = false;
      this.el.scrollTop = this.el.scrollHeight;
    });
  }

  /** The history index of the last row (-1 with none). */
  lastIndex() {
    const id = this.el.lastElementChild?.dataset.id;
    return id ? (this.rows.get(id)?.m.index ?? -1) : -1;
  }

  /**
   * Puts `messages` into their rows — a new row, the row drawn again when its content
   * changed, or only its status line — and removes the rows of `gone` (message ids). With
   * `ordered` (`messages` is the whole history) every row is put in history order; otherwise
   * new rows go at the end. A reader at the latest message stays there, and so does one who
   * just sent a message.
   * @param {MessageView[]} messages
   * @param {string[]} gone
   * @param {boolean} ordered
   */
  draw(messages, gone, ordered) {
    let reshaped = gone.length > 0;
    for (const id of gone) {
      const row = this.rows.get(id);
      if (!row) continue;
      row.el.remove();
      this.rows.delete(id);
      if (this.ids.get(row.m.index) === id) this.ids.delete(row.m.index);
    }
    let appendedOwn = false;
    /** @type {Element | null} the row the next one goes after (ordered) */
    let previous = null;
    for (const m of messages) {
      let row = this.rows.get(m.id);
      if (!row) {
        row = this.createRow(m);
        if (!ordered) this.el.append(row.el);
        appendedOwn ||= m.outgoing;
        reshaped = true;
      } else if (row.content !== contentKey(m)) {
        // Edited, deleted, reacted to or quoted differently: draw the row again.
        const fresh = this.createRow(m);
        row.el.replaceWith(fresh.el);
        row = fresh;
        reshaped = true;
      } else {
        if (row.key !== statusKey(m)) this.updateStatus(row, m);
        if (row.m.index !== m.index) {
          row.el.dataset.index = String(m.index);
          reshaped = true;
        }
        row.m = m;
      }
      this.rows.set(m.id, row);
      this.ids.set(m.index, m.id);
      if (ordered) {
        const at = previous ? previous.nextElementSibling : this.el.firstElementChild;
        if (at !== row.el) {
          this.el.insertBefore(row.el, at);
          reshaped = true;
        }
        previous = row.el;
      }
    }
    if (ordered) {
      // The history numbered anew (earlier messages brought over): forget indices of before.
      this.ids = new Map(messages.map((m) => [m.index, m.id]));
    }
    // Only rows coming, going or drawn again move what the reader sees, not a status line.
    if (reshaped && (this.pinned || appendedOwn)) this.scrollToEnd();
  }

  /** @returns {Row} */
  createRow(m) {
    const kind = this.kind;
    if (m.kind === "system" || m.kind === "call") {
      const el = h(
        "div",
        { class: `msg system${m.kind === "call" ? ` call ${m.call?.outcome ?? ""}` : ""}`, role: "note", dataset: { index: String(m.index), id: m.id } },
        h("span", { class: "msg-body", dir: "auto", text: m.text }),
        h("time", { class: "msg-time", datetime: new Date(m.sentAt || m.serverTime || 0).toISOString(), text: this.time(m.sentAt || m.serverTime) }),
      );
      const row = { el, status: null, m, key: "", content: contentKey(m) };
      this.updateStatus(row, m);
      return row;
    }
    const status = m.outgoing && m.kind !== "deleted" ? h("span", { class: "msg-status" }) : null;
    const el = h(
      "div",
      { class: `msg ${m.outgoing ? "outgoing" : "incoming"}${m.kind === "unsupported" || m.kind === "deleted" ? ` ${m.kind}` : ""}`, dataset: { index: String(m.index), id: m.id } },
      // Who wrote it: shown in groups; in a 1:1 chat the side says it, and screen readers hear it.
      h("span", {
        class: m.outgoing || kind !== "group" ? "visually-hidden" : "msg-sender",
        dir: "auto",
        // The engine gives the sender's verified display name, or their address.
        text: m.outgoing ? "You" : m.senderName || m.sender,
      }),
      quoteBlock(m),
      m.kind === "file" ? this.fileBody(this.conversationId, m) : h("div", { class: "msg-body", dir: "auto", text: m.text }),
      reactionBar(m, this.actions, this.active),
      h(
        "span",
        { class: "msg-meta" },
        m.edited ? h("span", { class: "msg-edited", text: "edited" }) : null,
        m.expiresAt ? this.timer(m.expiresAt) : null,
        h("time", { class: "msg-time", datetime: new Date(m.sentAt || 0).toISOString(), text: this.time(m.sentAt) }),
        status,
      ),
      messageActions(m, this.actions, this.active),
    );
    const row = { el, status, m, key: "", content: contentKey(m) };
    this.updateStatus(row, m);
    return row;
  }

  /**
   * `timeText(ms)`, kept for the minute it shows: rows that come together share it, and
   * formatting a time takes the page a while (about 0.4 ms in Chromium).
   */
  time(ms) {
    const of = `${Math.floor((ms || 0) / 60_000)} ${new Date().toDateString()}`;
    if (of !== this.timeOf) {
      this.timeOf = of;
      this.timeWords = timeText(ms);
    }
    return this.timeWords;
  }

  /** The mark of a message that disappears at `expiresAt`. */
  timer(expiresAt) {
    const when = `Disappears at ${this.time(expiresAt)}`;
    return h("span", { class: "msg-timer", title: when, "aria-label": when, text: "⏱" });
  }

  /** Draws a row's status line (sending, sent, delivered, read, failed). */
  updateStatus(row, m) {
    row.key = statusKey(m);
    row.m = m;
    // Only on change: setting an attribute, even to what it is, makes the page restyle the row.
    if (row.el.dataset.status !== m.status) row.el.dataset.status = m.status;
    if (!row.status) return;
    setText(row.status, statusText(m));
    const readers = readersText(m);
    if (row.status.title !== readers) row.status.title = readers;
  }
}

/** What a row's status line depends on. */
function statusKey(m) {
  return `${m.status}|${m.failure ?? ""}|${m.deliveredTo.length}|${m.readBy.length}`;
}

/** What the rest of a row depends on. */
function contentKey(m) {
  return JSON.stringify([m.kind, m.text, m.edited, m.reactions, m.replyTo, m.expiresAt, m.senderName, m.call?.outcome]);
}
