// The conversation list: avatar, title, last message preview, unread count; most recent first
// (the engine's order). Items are kept and updated in place, keyed by conversation id; a
// render may name the entries to draw again, the others only being kept in place. A direct
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
    /** @type {Map<string, {li: HTMLLIElement, parts: Record<string, HTMLElement>, drawn: boolean, avatarOf: string, timeOf: string}>} */
    this.items = new Map();
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView[]} conversations
   * @param {string | null} selectedId
   * @param {Set<string> | null} [only] draw only these entries again (the selection is the same)
   */
  render(conversations, selectedId, only = null) {
    renderById(this.list, this.items, conversations, (id) => this.create(id), (item, c) => {
      if (only && item.drawn && !only.has(c.id)) return;
      item.drawn = true;
      this.update(item, c, c.id === selectedId, !only);
    });
    // Only on change: setting an element's state, even to what it is, makes the page restyle it.
    if (this.empty.hidden !== (conversations.length > 0)) this.empty.hidden = conversations.length > 0;
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
    // What the avatar and the time were drawn from.
    return { li, parts, drawn: false, avatarOf: "", timeOf: "" };
  }

  /**
   * Draws an entry; the avatar again only when `all` entries are drawn (a picture may have
   * changed) or it shows someone else, the time only when its minute changed (or the day did:
   * formatting a time takes the page a while, about 0.4 ms in Chromium).
   */
  update(item, c, selected, all) {
    const { li, parts } = item;
    const title = c.title || "Untitled";
    setText(parts.title, title);
    const other = c.kind === "direct" ? otherPerson(c, this.profiles.me) : null;
    if (all || item.avatarOf !== `${other} ${title}`) {
      item.avatarOf = `${other} ${title}`;
      this.profiles.fill(parts.avatar, other, title);
    }
    const timeOf = `${Math.floor(c.lastActivity / 60_000)} ${new Date().toDateString()}`;
    if (item.timeOf !== timeOf) {
      item.timeOf = timeOf;
      setText(parts.time, timeText(c.lastActivity));
    }
    setText(parts.preview, previewText(c));
    // Nothing at all when there is nothing unread, not even hidden text.
    setText(parts.unreadCount, c.unread ? String(c.unread) : "");
    setText(parts.unreadWords, c.unread ? (c.unread === 1 ? " unread message" : " unread messages") : "");
    if (parts.unread.hidden !== (c.unread === 0)) parts.unread.hidden = c.unread === 0;
    li.classList.toggle("inactive", !c.active);
    if (selected && !parts.button.hasAttribute("aria-current")) parts.button.setAttribute("aria-current", "true");
    else if (!selected) parts.button.removeAttribute("aria-current");
  }
}
