// **Edit profile** in the top bar: this account's display name, status and picture. The
// engine signs the profile with the account's identity key and shares it only inside the
// end-to-end encrypted conversations (never with the server, never with someone whose message
// request was not accepted); this dialog only edits it. A picture is shrunk in the page first
// (profile-image.js); Save replaces the whole profile, so the picture shown is passed along
// to keep it, and none after **Remove picture**.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { shrinkPicture } from "../profile-image.js";

/** The engine's limits, in characters; checked here first only to say it sooner. */
const NAME_MAX = 64;
const STATUS_MAX = 140;

export class ProfileDialog {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {HTMLElement} topbar where the **Edit profile** button goes
   * @param {AbortSignal} signal
   */
  constructor(client, topbar, signal) {
    this.client = client;
    /** @type {{bytes: Uint8Array, type: string} | null} the picture Save will send */
    this.picture = null;
    this.previewUrl = null;
    this.busy = false;
    const open = h("button", { type: "button", class: "secondary small", "aria-haspopup": "dialog", text: "Edit profile" });
    topbar.append(open);

    this.name = h("input", { id: "profile-name", type: "text", autocomplete: "nickname", dir: "auto", "aria-describedby": "profile-error" });
    this.status = h("input", { id: "profile-status", type: "text", autocomplete: "off", dir: "auto", "aria-describedby": "profile-error" });
    this.preview = h("img", { class: "profile-preview", alt: "Your picture", hidden: true });
    this.file = h("input", { id: "profile-picture", type: "file", accept: "image/*", "aria-describedby": "profile-picture-hint profile-error" });
    this.removePicture = h("button", { type: "button", class: "secondary small", text: "Remove picture", hidden: true });
    this.busyText = h("p", { class: "hint", role: "status" });
    this.error = h("p", { id: "profile-error", class: "error", role: "alert" });
    this.save = h("button", { type: "submit", text: "Save" });
    const cancel = h("button", { type: "button", class: "secondary", text: "Cancel" });
    this.form = h(
      "form",
      { class: "stack", novalidate: true },
      h("h2", { id: "profile-title", text: "Edit profile" }),
      h("p", {
        class: "hint",
        text: "Shown to the people you chat with, end-to-end encrypted like your messages: the server never sees it. Your address stays beside it.",
      }),
      h("label", { for: "profile-name", text: "Display name" }),
      this.name,
      h("label", { for: "profile-status", text: "Status" }),
      this.status,
      h("label", { for: "profile-picture", text: "Picture" }),
      h("div", { class: "profile-picture" }, this.preview, this.removePicture),
      this.file,
      h("p", { id: "profile-picture-hint", class: "hint", text: "Cropped to a square and made small in this browser before it is sent." }),
      this.busyText,
      this.error,
      h("div", { class: "dialog-actions" }, cancel, this.save),
    );
    this.dialog = h("dialog", { id: "profile-dialog", "aria-labelledby": "profile-title" }, this.form);
    document.body.append(this.dialog);

    open.addEventListener("click", () => this.open(), { signal });
    cancel.addEventListener("click", () => this.dialog.close(), { signal });
    this.dialog.addEventListener("close", () => this.showPicture(null), { signal });
    this.file.addEventListener("change", () => this.choose(), { signal });
    this.removePicture.addEventListener("click", () => this.showPicture(null), { signal });
    this.form.addEventListener("submit", (e) => this.submit(e), { signal });
    signal.addEventListener("abort", () => {
      this.showPicture(null);
      this.dialog.remove();
    });
  }

  /** Opens the dialog with the profile as it is now. */
  open() {
    const p = this.client.profile?.();
    this.name.value = p?.name ?? "";
    this.status.value = p?.status ?? "";
    this.file.value = "";
    setText(this.error, "");
    setText(this.busyText, "");
    this.showPicture(p?.picture ? (this.client.profilePicture?.(this.client.user()) ?? null) : null);
    this.dialog.showModal();
    this.name.focus();
  }

  /** Makes `picture` the one Save sends, and previews it. */
  showPicture(picture) {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = null;
    this.picture = picture;
    if (picture) {
      this.previewUrl = URL.createObjectURL(new Blob([picture.bytes], { type: picture.type }));
      this.preview.src = this.previewUrl;
    } else {
      this.preview.removeAttribute("src");
      this.file.value = "";
    }
    this.preview.hidden = !picture;
    this.removePicture.hidden = !picture;
  }

  async choose() {
    const file = this.file.files?.[0];
    if (!file) return;
    setText(this.error, "");
    setText(this.busyText, "Preparing the picture…");
    this.save.disabled = true;
    try {
      this.showPicture(await shrinkPicture(file));
    } catch (e) {
      this.file.value = "";
      setText(this.error, describeError(e));
    } finally {
      setText(this.busyText, "");
      this.save.disabled = this.busy;
    }
  }

  async submit(event) {
    event.preventDefault();
    if (this.busy) return;
    setText(this.error, "");
    const name = this.name.value.trim();
    const status = this.status.value.trim();
    if (Array.from(name).length > NAME_MAX) {
      setText(this.error, `A display name has at most ${NAME_MAX} characters.`);
      return;
    }
    if (Array.from(status).length > STATUS_MAX) {
      setText(this.error, `A status has at most ${STATUS_MAX} characters.`);
      return;
    }
    this.busy = true;
    this.save.disabled = true;
    setText(this.save, "Saving…");
    try {
      const picture = this.picture;
      await (picture ? this.client.setProfile(name, status, picture.bytes, picture.type) : this.client.setProfile(name, status));
      this.dialog.close();
    } catch (e) {
      setText(this.error, describeError(e));
    } finally {
      this.busy = false;
      this.save.disabled = false;
      setText(this.save, "Save");
    }
  }
}
