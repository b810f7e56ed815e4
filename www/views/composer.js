// The message composer, shared by the app and the embedded chat: the text box (Enter sends,
// Shift+Enter starts a new line), the line above it that says what is being replied to or
// edited (with Cancel), the actions the message log offers on a message (react, reply, edit,
// delete for everyone — asked first), and errors under it in words. A text that could not
// be queued is given back, so nothing typed is lost.

import { byId, h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { ConfirmDialog } from "./confirm.js";

export class Composer {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {{ conversation: () => string | null, beforeSend?: () => void }} o the open
   *   conversation, and what to do just before a text goes (the app stops "typing")
   * @param {AbortSignal} signal
   */
  constructor(client, o, signal) {
    this.client = client;
    this.conversation = o.conversation;
    this.beforeSend = o.beforeSend ?? (() => {});
    this.form = byId("composer");
    this.input = byId("composer-input");
    this.button = byId("composer-send");
    this.error = byId("composer-error");
    /** Replying to or editing a message. @type {{ mode: "reply" | "edit", message: object } | null} */
    this.context = null;
    this.contextText = h("span", { class: "composer-context-text", dir: "auto" });
    this.contextBar = h(
      "div",
      { class: "composer-context", role: "status", hidden: true },
      this.contextText,
      h("button", { type: "button", class: "secondary small", text: "Cancel", on: { click: () => this.endContext() } }),
    );
    this.form.prepend(this.contextBar);
    this.deleteDialog = new ConfirmDialog(
      { id: "delete-message-dialog", title: "Delete this message?", action: "Delete for everyone", busy: "Deleting…" },
      signal,
    );
    this.form.addEventListener("submit", (e) => this.submit(e), { signal });
    this.input.addEventListener(
      "keydown",
      (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          this.form.requestSubmit();
        }
      },
      { signal },
    );
  }

  /** What the message log offers on a message (`MessageLog.setActions`). */
  actions() {
    return {
      react: (m, emoji, remove) => this.act(() => this.client.react(this.conversation(), m.id, emoji, remove)),
      reply: (m) => this.startContext("reply", m),
      edit: (m) => this.startContext("edit", m),
      remove: (m) => this.confirmDelete(m),
    };
  }

  /** Whether a text can be written (an inactive conversation takes none). */
  setEnabled(yes) {
    // Only on change: setting an element's state, even to what it is, makes the page restyle it.
    if (this.input.disabled === yes) this.input.disabled = !yes;
    if (this.button.disabled === yes) this.button.disabled = !yes;
  }

  /** Empties the composer (another conversation was opened). */
  clear() {
    setText(this.error, "");
    this.input.value = "";
    this.endContext();
  }

  async submit(event) {
    event.preventDefault();
    const id = this.conversation();
    const text = this.input.value;
    if (!id || !text.trim()) return;
    setText(this.error, "");
    this.input.value = "";
    this.input.focus();
    const context = this.context;
    this.endContext();
    this.beforeSend();
    try {
      if (context?.mode === "edit") await this.client.editMessage(id, context.message.id, text);
      else if (context?.mode === "reply") await this.client.sendReply(id, text, context.message.id);
      else await this.client.sendText(id, text);
    } catch (e) {
      // Nothing was queued: give the text back so it is not lost.
      if (!this.input.value && this.conversation() === id) this.input.value = text;
      setText(this.error, describeError(e));
    }
  }

  /** Runs a message action, showing its error under the composer. */
  async act(action) {
    setText(this.error, "");
    try {
      await action();
    } catch (e) {
      setText(this.error, describeError(e));
    }
  }

  /** Asks before deleting one of this person's messages for everyone in the conversation. */
  confirmDelete(m) {
    const id = this.conversation();
    this.deleteDialog.ask(
      {
        text: "It is removed for everyone in this conversation, on all their devices. This cannot be undone.",
        quote: m.text.replace(/\s+/g, " ").slice(0, 200),
      },
      () => this.client.deleteMessage(id, m.id),
    );
  }

  /** Starts replying to or editing message `m`. */
  startContext(mode, m) {
    this.context = { mode, message: m };
    const who = m.outgoing ? "yourself" : m.senderName || m.sender;
    const preview = m.text.replace(/\s+/g, " ").slice(0, 80);
    setText(this.contextText, mode === "edit" ? `Editing: ${preview}` : `Replying to ${who}: ${preview}`);
    this.contextBar.hidden = false;
    if (mode === "edit") this.input.value = m.text;
    this.input.focus();
  }

  endContext() {
    this.context = null;
    this.contextBar.hidden = true;
    setText(this.contextText, "");
  }
}
