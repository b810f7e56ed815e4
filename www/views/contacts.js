// The Contacts dialog, opened from the sidebar: the account's contacts (Remove each), a field
// to add one by name, Export (a JSON file through the browser's downloads) and Import (such a
// file), and the people this account blocked (Unblock each). The engine keeps both lists and
// says when they change (the "contacts" event); this dialog only draws them.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { fullName } from "../people.js";

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

export class ContactsDialog {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {HTMLButtonElement} opener the sidebar's **Contacts** button
   * @param {AbortSignal} signal
   */
  constructor(client, opener, signal) {
    this.client = client;
    this.me = client.user();
    this.list = h("ul", { class: "members-list contact-list", "aria-label": "Contacts" });
    this.none = h("p", { class: "hint", text: "No contacts yet. Whoever you start a chat with, add to a group or accept a request from becomes one." });
    this.input = h("input", {
      id: "contacts-add-input",
      type: "text",
      autocomplete: "off",
      autocapitalize: "none",
      spellcheck: "false",
      "aria-describedby": "contacts-add-hint contacts-error",
    });
    this.addButton = h("button", { type: "submit", text: "Add" });
    this.form = h(
      "form",
      { class: "stack", novalidate: true },
      h("label", { for: "contacts-add-input", text: "Add a contact" }),
      this.input,
      h("p", { id: "contacts-add-hint", class: "hint", text: "A name on this server (bob) or anywhere (bob@example.org)." }),
      this.addButton,
    );
    this.exportButton = h("button", { type: "button", class: "secondary", text: "Export" });
    this.file = h("input", { id: "contacts-import", type: "file", accept: "application/json,.json", class: "visually-hidden" });
    this.blocked = h("ul", { class: "members-list", "aria-label": "Blocked people" });
    this.noneBlocked = h("p", { class: "hint", text: "You have not blocked anyone." });
    this.status = h("p", { class: "hint", role: "status" });
    this.error = h("p", { id: "contacts-error", class: "error", role: "alert" });
    this.close = h("button", { type: "button", class: "secondary", text: "Close" });
    this.dialog = h(
      "dialog",
      { id: "contacts-dialog", "aria-labelledby": "contacts-title" },
      h(
        "div",
        { class: "stack" },
        h("h2", { id: "contacts-title", text: "Contacts" }),
        this.list,
        this.none,
        this.form,
        h(
          "div",
          { class: "contacts-file" },
          this.exportButton,
          this.file,
          h("label", { for: "contacts-import", class: "file-button", text: "Import" }),
        ),
        this.status,
        this.error,
        h("h3", { text: "Blocked" }),
        this.blocked,
        this.noneBlocked,
        h("div", { class: "dialog-actions" }, this.close),
      ),
    );
    document.body.append(this.dialog);

    opener.addEventListener("click", () => this.open(), { signal });
    this.close.addEventListener("click", () => this.dialog.close(), { signal });
    this.form.addEventListener("submit", (e) => this.add(e), { signal });
    this.exportButton.addEventListener("click", () => this.exportFile(), { signal });
    this.file.addEventListener("change", () => this.importFile(), { signal });
    signal.addEventListener("abort", () => this.dialog.remove());
  }

  open() {
    setText(this.status, "");
    setText(this.error, "");
    this.input.value = "";
    this.draw();
    this.dialog.showModal();
    this.input.focus();
  }

  /** Redraws both lists (the engine said they changed, or the dialog opens). */
  refresh() {
    if (this.dialog.open) this.draw();
  }

  draw() {
    const contacts = this.client.contacts();
    this.list.replaceChildren(
      ...contacts.map(({ user, addedAt }) =>
        h(
          "li",
          {},
          h("span", { class: "member-name", dir: "auto", text: user }),
          addedAt ? h("span", { class: "hint", text: `since ${DATE.format(new Date(addedAt))}` }) : null,
          this.personButton("Remove", user, () => this.client.removeContact(user)),
        ),
      ),
    );
    this.none.hidden = contacts.length > 0;
    const blocked = this.client.blockedUsers();
    this.blocked.replaceChildren(
      ...blocked.map((user) =>
        h("li", {}, h("span", { class: "member-name", dir: "auto", text: user }), this.personButton("Unblock", user, () => this.client.unblock(user))),
      ),
    );
    this.noneBlocked.hidden = blocked.length > 0;
  }

  /** A small button acting on one person ("Remove bob@localhost"). */
  personButton(text, user, act) {
    return h("button", {
      type: "button",
      class: "secondary small",
      "aria-label": `${text} ${user}`,
      text,
      on: {
        click: async (e) => {
          const button = e.currentTarget;
          setText(this.error, "");
          setText(this.status, "");
          button.disabled = true;
          try {
            await act();
          } catch (err) {
            setText(this.error, describeError(err));
            button.disabled = false;
          }
        },
      },
    });
  }

  async add(event) {
    event.preventDefault();
    setText(this.error, "");
    setText(this.status, "");
    const typed = this.input.value.trim();
    if (!typed) {
      setText(this.error, "Type the name of the person to add.");
      return;
    }
    const user = fullName(typed, this.me);
    this.addButton.disabled = true;
    try {
      await this.client.addContact(user);
      this.input.value = "";
      setText(this.status, `${user} is now a contact.`);
    } catch (e) {
      setText(this.error, describeError(e, typed));
    } finally {
      this.addButton.disabled = false;
    }
  }

  exportFile() {
    setText(this.error, "");
    try {
      const json = this.client.exportContacts();
      const name = `quicproquo-contacts-${this.me.replace(/[^A-Za-z0-9._-]/g, "_")}-${new Date().toISOString().slice(0, 10)}.json`;
      const url = URL.createObjectURL(new Blob([json], { type: "application/json" }));
      const a = h("a", { href: url, download: name, hidden: true });
      this.dialog.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      const n = this.client.contacts().length;
      setText(this.status, `Saved ${n} ${n === 1 ? "contact" : "contacts"} as ${name}.`);
    } catch (e) {
      setText(this.error, describeError(e));
    }
  }

  async importFile() {
    const file = this.file.files?.[0];
    if (!file) return;
    setText(this.error, "");
    setText(this.status, "Importing…");
    try {
      const added = await this.client.importContacts(await file.text());
      setText(this.status, added === 0 ? "Nothing new: everyone in the file is already a contact." : `Added ${added} ${added === 1 ? "contact" : "contacts"}.`);
    } catch (e) {
      setText(this.status, "");
      setText(this.error, describeError(e));
    } finally {
      this.file.value = "";
    }
  }
}
