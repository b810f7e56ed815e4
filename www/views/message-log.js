// The history of the open conversation. Message text is put into the page as text only
// (a Text node inside a bidi-isolated, auto-direction element), never parsed as HTML.

import { h, setText } from "../dom.js";
import { statusText, timeText } from "../format.js";

/** How close to the bottom (px) still counts as "reading the latest". */
const STICK_TO_BOTTOM_PX = 48;

export class MessageLog {
  /** @param {HTMLElement} el the log element (role=log, named "Messages") */
  constructor(el) {
    this.el = el;
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
   */
  render(conversationId, history, kind) {
    const switched = conversationId !== this.conversationId;
    if (switched) {
      this.el.replaceChildren();
      this.rows.clear();
      this.conversationId = conversationId;
    }
    const atBottom = switched || this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < STICK_TO_BOTTOM_PX;
    let appendedOwn = false;
    for (const m of history) {
      const existing = this.rows.get(m.index);
      const key = `${m.status}|${m.failure ?? ""}|${m.deliveredTo.length}`;
      if (!existing) {
        const row = this.createRow(m, kind);
        this.el.append(row.row);
        this.rows.set(m.index, row);
        appendedOwn ||= m.outgoing;
      } else if (existing.key !== key) {
        this.updateStatus(existing, m);
      }
    }
    if (atBottom || appendedOwn) this.el.scrollTop = this.el.scrollHeight;
  }

  clear() {
    this.el.replaceChildren();
    this.rows.clear();
    this.conversationId = null;
  }

  createRow(m, kind) {
    if (m.kind === "system") {
      const row = h(
        "div",
        { class: "msg system", role: "note", dataset: { index: String(m.index) } },
        h("span", { class: "msg-body", dir: "auto", text: m.text }),
        h("time", { class: "msg-time", datetime: new Date(m.sentAt || m.serverTime || 0).toISOString(), text: timeText(m.sentAt || m.serverTime) }),
      );
      return { row, status: null, key: "" };
    }
    const status = m.outgoing ? h("span", { class: "msg-status" }) : null;
    const row = h(
      "div",
      { class: `msg ${m.outgoing ? "outgoing" : "incoming"}${m.kind === "unsupported" ? " unsupported" : ""}`, dataset: { index: String(m.index) } },
      // Who wrote it: shown in groups; in a 1:1 chat the side says it, and screen readers hear it.
      h("span", {
        class: m.outgoing || kind !== "group" ? "visually-hidden" : "msg-sender",
        dir: "auto",
        text: m.outgoing ? "You" : m.sender,
      }),
      h("div", { class: "msg-body", dir: "auto", text: m.text }),
      h(
        "span",
        { class: "msg-meta" },
        h("time", { class: "msg-time", datetime: new Date(m.sentAt || 0).toISOString(), text: timeText(m.sentAt) }),
        status,
      ),
    );
    const item = { row, status, key: "" };
    this.updateStatus(item, m);
    return item;
  }

  updateStatus(item, m) {
    item.key = `${m.status}|${m.failure ?? ""}|${m.deliveredTo.length}`;
    item.row.dataset.status = m.status;
    if (!item.status) return;
    setText(item.status, statusText(m));
    item.status.title = m.deliveredTo.length ? `Delivered to ${m.deliveredTo.join(", ")}` : "";
  }
}
