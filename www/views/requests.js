// Message requests: conversations that someone who is not a contact started or invited this
// account to. They wait in their own list above the conversation list, showing who it is and
// their first message (as text), with Accept (it becomes a normal conversation and the person
// a contact), Delete (this account leaves it) and Block (the person is blocked and their
// requests deleted); Delete and Block ask first, saying what will happen. Until accepted, the
// engine sends the person no read or delivery receipts and no typing; the app opens a request
// read-only and does not mark it read.

import { h, renderById, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { requester } from "../people.js";
import { ConfirmDialog } from "./confirm.js";

/**
 * What can be done with a request, shared by the list and the open chat's banner; a failure is
 * said through `onError`, as a sentence.
 */
export class RequestActions {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {(sentence: string) => void} onError
   */
  constructor(client, onError) {
    this.client = client;
    this.onError = onError;
    this.me = client.user();
  }

  /** @param {import("/pkg/qpq_web.js").ConversationView} c */
  accept(c) {
    return this.run(() => this.client.acceptRequest(c.id));
  }

  /**
   * Deletes the request, once the person said so: this account leaves the conversation (its
   * other members see that it left, nothing more) and it goes from the account's devices.
   * (Leaving is a message to the others: the text does not pretend they learn nothing.)
   * @param {import("/pkg/qpq_web.js").ConversationView} c
   */
  remove(c) {
    const who = requester(c, this.me);
    const group = c.kind === "group";
    const text = !c.active
      ? `The ${group ? "group" : "conversation"} is removed from your devices. ${who} is not told.`
      : group
        ? `You leave the group and it is removed from your devices. Its members, ${who} too, see only that you left.`
        : `The conversation is removed from your devices. ${who} sees only that you left it.`;
    return this.confirm(
      { id: "delete-request-dialog", title: "Delete this request?", action: "Delete request", busy: "Deleting…" },
      text,
      () => this.client.deleteRequest(c.id),
    );
  }

  /**
   * Blocks whoever sent the request, once the person said so; their requests are put away.
   * @param {import("/pkg/qpq_web.js").ConversationView} c
   */
  block(c) {
    const who = requester(c, this.me);
    return this.confirm(
      { id: "block-request-dialog", title: `Block ${who}?`, action: "Block", busy: "Blocking…" },
      `${BLOCK_TEXT} You can unblock them in Contacts.`,
      () => this.client.block(who),
    );
  }

  /**
   * Asks first, in a dialog made for this one question and removed once it closes (the
   * actions live as long as the app, which gives them nothing to tie a lasting dialog to).
   * Resolves when the dialog closes, whether the action ran or was cancelled; a failure is
   * said in the dialog, which stays open to try again.
   * @param {{ id: string, title: string, action: string, busy: string }} words
   * @param {string} text what will happen
   * @param {() => Promise<void>} action
   */
  confirm(words, text, action) {
    const gone = new AbortController();
    const dialog = new ConfirmDialog(words, gone.signal);
    return new Promise((resolve) => {
      dialog.dialog.addEventListener(
        "close",
        () => {
          gone.abort();
          resolve();
        },
        { once: true },
      );
      dialog.ask({ text }, action);
    });
  }

  async run(action) {
    try {
      await action();
    } catch (e) {
      this.onError(describeError(e));
    }
  }

  /**
   * The three buttons, disabled while one of them runs.
   * @param {() => import("/pkg/qpq_web.js").ConversationView | null} conversation the request they act on
   * @param {string} [describedBy] the id of what names the request (for screen readers)
   */
  buttons(conversation, describedBy) {
    const make = (text, cls, act) =>
      h("button", {
        type: "button",
        class: cls ? `${cls} small` : "small",
        "aria-describedby": describedBy,
        text,
        on: {
          click: async () => {
            const c = conversation();
            if (!c) return;
            for (const b of all) b.disabled = true;
            await act(c);
            for (const b of all) b.disabled = false;
          },
        },
      });
    const all = [
      make("Accept", "", (c) => this.accept(c)),
      make("Delete", "secondary", (c) => this.remove(c)),
      make("Block", "danger", (c) => this.block(c)),
    ];
    return h("div", { class: "request-actions" }, ...all);
  }
}

/**
 * What blocking someone does, in words: what they send only to this account the node drops;
 * what they send to a group this account is in arrives but is not shown.
 */
export const BLOCK_TEXT =
  "Their messages will not reach any of your devices (in a group you share, they are not shown). They are not told.";

/** The first thing the person wrote in a request, in one line of text. */
export function firstMessageText(client, c) {
  const m = client.history(c.id).find((m) => !m.outgoing && (m.kind === "text" || m.kind === "file"));
  if (!m) return c.kind === "group" ? "Invited you to a group" : "No messages yet";
  const text = m.kind === "file" && m.file ? `File: ${m.file.name}` : m.text;
  return text.replace(/\s+/g, " ").slice(0, 200);
}

/** The "Message requests" list in the sidebar; hidden when there are none. */
export class MessageRequests {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {{ section: HTMLElement, list: HTMLUListElement }} places
   * @param {RequestActions} actions
   * @param {(id: string) => void} onSelect opens a request (read-only)
   */
  constructor(client, { section, list }, actions, onSelect) {
    this.client = client;
    this.section = section;
    this.list = list;
    this.list.replaceChildren();
    this.actions = actions;
    this.onSelect = onSelect;
    this.me = client.user();
    /** @type {Map<string, {li: HTMLLIElement, parts: Record<string, HTMLElement>, c: import("/pkg/qpq_web.js").ConversationView, drawn: boolean}>} */
    this.items = new Map();
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView[]} requests
   * @param {string | null} selectedId
   * @param {Set<string> | null} [only] draw only these entries again (the selection is the same)
   */
  render(requests, selectedId, only = null) {
    renderById(this.list, this.items, requests, (id) => this.create(id), (item, c) => {
      item.c = c;
      if (only && item.drawn && !only.has(c.id)) return;
      item.drawn = true;
      this.update(item, c, c.id === selectedId);
    });
    // Only on change: setting an element's state, even to what it is, makes the page restyle it.
    if (this.section.hidden !== (requests.length === 0)) this.section.hidden = requests.length === 0;
  }

  create(id) {
    const nameId = `request-${id}`;
    const parts = {
      who: h("span", { class: "conv-title", id: nameId, dir: "auto" }),
      group: h("span", { class: "request-group", dir: "auto" }),
      first: h("span", { class: "conv-preview request-first", dir: "auto" }),
    };
    parts.button = h(
      "button",
      { type: "button", class: "conversation request", on: { click: () => this.onSelect(id) } },
      parts.who,
      parts.group,
      parts.first,
    );
    const li = h("li", { class: "request-item", dataset: { id } }, parts.button);
    const item = { li, parts, c: null, drawn: false };
    li.append(this.actions.buttons(() => item.c, nameId));
    return item;
  }

  update({ li, parts }, c, selected) {
    setText(parts.who, requester(c, this.me));
    setText(parts.group, c.kind === "group" ? `Group: ${c.title || "Untitled"}` : "");
    parts.group.hidden = c.kind !== "group";
    setText(parts.first, firstMessageText(this.client, c));
    li.classList.toggle("selected", selected);
    if (selected && !parts.button.hasAttribute("aria-current")) parts.button.setAttribute("aria-current", "true");
    else if (!selected) parts.button.removeAttribute("aria-current");
  }
}
