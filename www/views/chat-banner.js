// The line above the composer of the open conversation when it cannot be written to as usual:
// a message request (who it is from, that they are not a contact, Accept, Delete, Block) or a
// direct chat with someone this account blocked. Other conversations show nothing here.

import { h, setText } from "../dom.js";
import { requester } from "../people.js";

export class ChatBanner {
  /**
   * @param {HTMLElement} before the element the banner goes in front of
   * @param {import("./requests.js").RequestActions} actions
   * @param {string} me this account
   */
  constructor(before, actions, me) {
    this.me = me;
    /** @type {import("/pkg/qpq_web.js").ConversationView | null} */
    this.conversation = null;
    this.text = h("p", { id: "chat-banner-text", dir: "auto" });
    this.requestButtons = actions.buttons(() => this.conversation, "chat-banner-text");
    this.el = h("section", { class: "chat-banner", "aria-label": "About this chat", hidden: true }, this.text, this.requestButtons);
    before.before(this.el);
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView | null} c
   * @param {string | null} blocked the blocked other person of a direct chat, if any
   */
  show(c, blocked) {
    this.conversation = c;
    if (c?.request) {
      const who = requester(c, this.me);
      setText(
        this.text,
        c.kind === "group"
          ? `${who} invited you to this group and is not in your contacts. They do not see that you read it. Accept to reply.`
          : `${who} is not in your contacts. They do not see that you read this. Accept to reply.`,
      );
    } else if (c && blocked) {
      setText(this.text, `You blocked ${blocked}. Their messages do not reach you; unblock them in Chat info or Contacts.`);
    }
    // Only on change: setting an element's state, even to what it is, makes the page restyle it.
    if (this.requestButtons.hidden !== !c?.request) this.requestButtons.hidden = !c?.request;
    const hidden = !c || !(c.request || blocked);
    if (this.el.hidden !== hidden) this.el.hidden = hidden;
  }
}
