// The history of the open conversation. Message text is put into the page as text only
// (a Text node inside a bidi-isolated, auto-direction element), never parsed as HTML.

import { h, setText } from "../dom.js";
import { readersText, statusText, timeText } from "../format.js";
import { messageActions, quoteBlock, reactionBar } from "./message-actions.js";

/** How close to the bottom (px) still counts as "reading the latest". */
const STICK_TO_BOTTOM_PX = 48;

export class MessageLog {
  /**
   * @param {HTMLElement} el the log element (role=log, named "Messages")
   * @param {(conversationId: string, m: import("/pkg/qpq_web.js").MessageView) => HTMLElement} fileBody
   *   draws the body of a file message
   */
  constructor(el, fileBody) {
    this.el = el;
    this.fileBody = fileBody;
    /** What the message menu does (see `setActions`). */
    this.actions = { react() {}, reply() {}, edit() {}, remove() {} };
    this.active = true;
    this.el.replaceChildren();
    this.conversationId = null;
    /** @type {Map<number, {row: HTMLElement, status: HTMLElement | null, key: string}>} */
    this.rows = new Map();
  }

  /**
   * Shows `history` (oldest first) for `conversationId`, updating rows in place.
   * @param {string} conversationId
   * @param {import("/pkg/qpq_web.js").MessageView[]} history
   * @param {"direct" | "group"} kind
   * @param {boolean} [active] false once this device left or was removed
   */
  render(conversationId, history, kind, active = true) {
    const switched = conversationId !== this.conversationId || active !== this.active;
    if (switched) {
      this.el.replaceChildren();
      this.rows.clear();
      this.conversationId = conversationId;
      this.active = active;
    }
    // Where the reader is matters only when rows come, go or are drawn again: most renders
    // change only a status line, and reading the scroll position (or setting it) after the
    // page changed makes the browser lay the whole page out there and then.
    const reshaping =
      switched ||
      history.length !== this.rows.size ||
      history.some((m) => this.rows.get(m.index)?.content !== contentKey(m));
    const atBottom = reshaping && (switched || this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < STICK_TO_BOTTOM_PX);
    let appendedOwn = false;
    const present = new Set();
    for (const m of history) {
      present.add(m.index);
      const existing = this.rows.get(m.index);
      if (!existing) {
        const row = this.createRow(m, kind);
        this.el.append(row.row);
        this.rows.set(m.index, row);
        appendedOwn ||= m.outgoing;
      } else if (existing.content !== contentKey(m)) {
        // Edited, deleted, reacted to or quoted differently: draw the row again.
        const row = this.createRow(m, kind);
        existing.row.replaceWith(row.row);
        this.rows.set(m.index, row);
      } else if (existing.key !== statusKey(m)) {
        this.updateStatus(existing, m);
      }
    }
    // Entries that disappeared (their timer ran out).
    for (const [index, row] of this.rows) {
      if (!present.has(index)) {
        row.row.remove();
        this.rows.delete(index);
      }
    }
    if (atBottom || appendedOwn) this.el.scrollTop = this.el.scrollHeight;
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
    this.conversationId = null;
  }

  createRow(m, kind) {
    if (m.kind === "system" || m.kind === "call") {
      const row = h(
        "div",
        { class: `msg system${m.kind === "call" ? ` call ${m.call?.outcome ?? ""}` : ""}`, role: "note", dataset: { index: String(m.index) } },
        h("span", { class: "msg-body", dir: "auto", text: m.text }),
        h("time", { class: "msg-time", datetime: new Date(m.sentAt || m.serverTime || 0).toISOString(), text: timeText(m.sentAt || m.serverTime) }),
      );
      return { row, status: null, key: "", content: contentKey(m) };
    }
    const status = m.outgoing && m.kind !== "deleted" ? h("span", { class: "msg-status" }) : null;
    const row = h(
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
        m.expiresAt ? h("span", { class: "msg-timer", title: `Disappears at ${timeText(m.expiresAt)}`, "aria-label": `Disappears at ${timeText(m.expiresAt)}`, text: "⏱" }) : null,
        h("time", { class: "msg-time", datetime: new Date(m.sentAt || 0).toISOString(), text: timeText(m.sentAt) }),
        status,
      ),
      messageActions(m, this.actions, this.active),
    );
    const item = { row, status, key: "", content: contentKey(m) };
    this.updateStatus(item, m);
    return item;
  }

  updateStatus(item, m) {
    item.key = statusKey(m);
    item.row.dataset.status = m.status;
    if (!item.status) return;
    setText(item.status, statusText(m));
    item.status.title = readersText(m);
  }
}

/** What a row's status line depends on. */
function statusKey(m) {
  return `${m.status}|${m.failure ?? ""}|${m.deliveredTo.length}|${m.readBy.length}`;
}

/** What the rest of a row depends on. */
function contentKey(m) {
  return JSON.stringify([m.kind, m.text, m.edited, m.reactions, m.replyTo, m.expiresAt, m.senderName]);
}
