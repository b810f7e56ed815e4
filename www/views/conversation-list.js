// The conversation list: avatar, title, last message preview, unread count; most recent first
// (the engine's order). Items are kept and updated in place, keyed by conversation id. A direct
// chat's title is the other person's verified display name when they have one (the engine's),
// its avatar their picture; the avatar is hidden from screen readers, so an entry is named by
// its title.

import { h, renderById, setText } from "../dom.js";
import { previewText, timeText } from "../format.js";
import { otherPerson } from "../people.js";

export class ConversationList {
  /**
   * @param {HTMLUListElement} list
   * @param {HTMLElement} empty shown when there are no conversations
   * @param {(id: string) => void} onSelect
   * @param {import("../profiles.js").Profiles} profiles
   */
  constructor(list, empty, onSelect, profiles) {
    this.list = list;
    this.profiles = profiles;
    // Start empty: a previous app instance (before the account was locked here) may have left items.
    this.list.replaceChildren();
    this.empty = empty;
    this.onSelect = onSelect;
    /** @type {Map<string, {li: HTMLLIElement, parts: Record<string, HTMLElement>}>} */
    this.items = new Map();
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView[]} conversations
   * @param {string | null} selectedId
   */
  render(conversations, selectedId) {
    renderById(this.list, this.items, conversations, (id) => this.create(id), (item, c) => this.update(item, c, c.id === selectedId));
    this.empty.hidden = conversations.length > 0;
  }

  create(id) {
    const parts = {
      avatar: this.profiles.avatar("conv-avatar"),
      title: h("span", { class: "conv-title", dir: "auto" }),
      time: h("span", { class: "conv-time" }),
      preview: h("span", { class: "conv-preview", dir: "auto" }),
      unreadCount: h("span", { "aria-hidden": "true" }),
      unreadWords: h("span", { class: "visually-hidden" }),
    };
    parts.unread = h("span", { class: "conv-unread" }, parts.unreadCount, parts.unreadWords);
    parts.button = h(
      "button",
      { type: "button", class: "conversation", on: { click: () => this.onSelect(id) } },
      parts.avatar,
      parts.title,
      parts.time,
      parts.preview,
      parts.unread,
    );
    const li = h("li", { dataset: { id } }, parts.button);
    return { li, parts };
  }

  update({ li, parts }, c, selected) {
    setText(parts.title, c.title || "Untitled");
    this.profiles.fill(parts.avatar, c.kind === "direct" ? otherPerson(c, this.profiles.me) : null, c.title || "Untitled");
    setText(parts.time, timeText(c.lastActivity));
    setText(parts.preview, previewText(c));
    // Nothing at all when there is nothing unread, not even hidden text.
    setText(parts.unreadCount, c.unread ? String(c.unread) : "");
    setText(parts.unreadWords, c.unread ? (c.unread === 1 ? " unread message" : " unread messages") : "");
    parts.unread.hidden = c.unread === 0;
    li.classList.toggle("inactive", !c.active);
    if (selected) parts.button.setAttribute("aria-current", "true");
    else parts.button.removeAttribute("aria-current");
  }
}
