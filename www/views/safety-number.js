// The Safety number screen: the 60 digits (and their QR code) that two people compare to know
// their chat is encrypted to the right keys, and Mark as verified. A contact whose number
// changed after it was verified is written to again only once the new number is verified.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { drawQr } from "../qr.js";

const STATUS = {
  unverified: "Not verified. Compare these digits with the ones on their screen (in person or on a call) before marking them verified.",
  verified: "Verified: you compared this number with theirs.",
  changed:
    "This number changed since you verified it: their identity key is new (a new account or a reinstall, or someone posing as them). Compare it again before writing to them.",
};

export class SafetyNumberDialog {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {AbortSignal} signal removes the dialog with the app
   */
  constructor(client, signal) {
    this.client = client;
    /** @type {import("/pkg/qpq_web.js").SafetyNumberView | null} */
    this.number = null;
    this.title = h("h2", { id: "safety-number-title", text: "Safety number" });
    this.intro = h("p", { id: "safety-number-intro", dir: "auto" });
    this.digits = h("p", { class: "safety-digits", "aria-label": "Safety number digits", role: "text" });
    this.qr = h("canvas", { class: "safety-qr", role: "img", "aria-label": "QR code of the safety number" });
    this.status = h("p", { class: "hint", role: "status", "aria-label": "Verification" });
    this.verify = h("button", { type: "button", text: "Mark as verified" });
    this.unverify = h("button", { type: "button", class: "secondary", text: "Clear verification" });
    this.error = h("p", { class: "error", role: "alert" });
    this.close = h("button", { type: "button", class: "secondary", text: "Close" });
    this.dialog = h(
      "dialog",
      { id: "safety-number-dialog", "aria-labelledby": "safety-number-title", "aria-describedby": "safety-number-intro" },
      h(
        "div",
        { class: "stack" },
        this.title,
        this.intro,
        this.digits,
        this.qr,
        this.status,
        this.error,
        h("div", { class: "dialog-actions" }, this.close, this.unverify, this.verify),
      ),
    );
    document.body.append(this.dialog);
    this.close.addEventListener("click", () => this.dialog.close(), { signal });
    this.verify.addEventListener("click", () => this.mark(true), { signal });
    this.unverify.addEventListener("click", () => this.mark(false), { signal });
    signal.addEventListener("abort", () => this.dialog.remove());
  }

  /** Opens the screen for `user`, fetching their current number. */
  async open(user) {
    this.number = null;
    setText(this.intro, `Compare these digits with the ones ${user} sees for you.`);
    setText(this.digits, "");
    setText(this.status, "Looking up the current number…");
    setText(this.error, "");
    this.verify.hidden = this.unverify.hidden = true;
    drawQr(this.qr, 0, "");
    if (!this.dialog.open) this.dialog.showModal();
    try {
      this.show(await this.client.safetyNumber(user));
    } catch (e) {
      setText(this.status, "");
      setText(this.error, describeError(e));
    }
  }

  /** @param {import("/pkg/qpq_web.js").SafetyNumberView} n */
  show(n) {
    this.number = n;
    setText(this.digits, n.digits);
    setText(this.status, STATUS[n.verification]);
    this.verify.hidden = n.verification === "verified";
    this.unverify.hidden = n.verification !== "verified";
    drawQr(this.qr, n.qrSize, n.qrModules);
  }

  async mark(verified) {
    const n = this.number;
    if (!n) return;
    setText(this.error, "");
    this.verify.disabled = this.unverify.disabled = true;
    try {
      if (verified) await this.client.markVerified(n.user, n.digits);
      else await this.client.clearVerified(n.user);
      this.show(await this.client.safetyNumber(n.user));
    } catch (e) {
      setText(this.error, describeError(e));
    } finally {
      this.verify.disabled = this.unverify.disabled = false;
    }
  }
}
