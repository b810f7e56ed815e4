// The question asked before what cannot be undone, or should not happen by a slip (deleting
// a message for everyone, deleting the account, deleting a message request, blocking someone):
// a modal dialog with what will happen, Cancel, and the action. While the action runs both
// buttons are disabled and a line says what is happening; if it fails, the reason is shown in
// words and the person can try again or cancel.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";

export class ConfirmDialog {
  /**
   * @param {{ id: string, title: string, action: string, busy: string }} words the dialog's
   *   id (its title and text get `<id>-title` and `<id>-text`), its title, the action button's
   *   label, and what the status line says while the action runs
   * @param {AbortSignal} signal removes the dialog with the app (unless an action is running)
   */
  constructor({ id, title, action, busy }, signal) {
    this.busyText = busy;
    this.run = null;
    this.title = h("h2", { id: `${id}-title`, dir: "auto", text: title });
    this.text = h("p", { id: `${id}-text`, dir: "auto" });
    this.quote = h("blockquote", { class: "msg-quote", dir: "auto", hidden: true });
    this.busy = h("p", { class: "hint", role: "status" });
    this.error = h("p", { class: "error", role: "alert" });
    this.confirm = h("button", { type: "button", class: "danger", text: action });
    this.cancel = h("button", { type: "button", class: "secondary", text: "Cancel" });
    this.dialog = h(
      "dialog",
      { id, "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-text` },
      h(
        "div",
        { class: "stack" },
        this.title,
        this.quote,
        this.text,
        this.busy,
        this.error,
        h("div", { class: "dialog-actions" }, this.cancel, this.confirm),
      ),
    );
    document.body.append(this.dialog);
    this.cancel.addEventListener("click", () => this.dialog.close(), { signal });
    // Escape closes the dialog too, but not while the action runs.
    this.dialog.addEventListener("cancel", (e) => this.confirm.disabled && e.preventDefault(), { signal });
    this.confirm.addEventListener("click", () => this.go(), { signal });
    signal.addEventListener("abort", () => {
      if (!this.confirm.disabled) this.dialog.remove();
    });
  }

  /**
   * Opens the dialog.
   * @param {{ text: string, quote?: string, title?: string }} what what will happen, and
   *   optionally the thing it happens to (shown as a quote, as text) and a title naming it
   *   (the one given at construction otherwise)
   * @param {() => Promise<string | void>} run the action; the dialog closes when it resolves,
   *   unless it resolves to a sentence, which then stays on screen (the page is about to go)
   */
  ask({ text, quote, title }, run) {
    this.run = run;
    if (title) setText(this.title, title);
    setText(this.text, text);
    setText(this.quote, quote ?? "");
    this.quote.hidden = !quote;
    setText(this.error, "");
    setText(this.busy, "");
    this.dialog.showModal();
    this.cancel.focus();
  }

  async go() {
    this.confirm.disabled = true;
    this.cancel.disabled = true;
    setText(this.error, "");
    setText(this.busy, this.busyText);
    let done;
    try {
      done = await this.run();
    } catch (e) {
      setText(this.busy, "");
      setText(this.error, describeError(e));
      this.confirm.disabled = false;
      this.cancel.disabled = false;
      return;
    }
    if (typeof done === "string") {
      setText(this.busy, done);
      return;
    }
    this.confirm.disabled = false;
    this.cancel.disabled = false;
    this.dialog.close();
  }
}
