// The account's devices and this browser's copy of it: the **Devices** button in the top bar
// opens a dialog listing the devices (by name, when added and last connected) with **Remove
// device**; **Link a device**, which shows a one-time link code (and its QR code) while this
// device waits to hand the account, its recent history and these settings over to the browser
// that types it; **Back up** (`backup.js`); the **Passphrase lock** (set, change, remove,
// **Lock after**, **Lock now**); and **Sign out**.

import { h, setText } from "../dom.js";
import { engineBindings } from "../engine.js";
import { describeError } from "../errors.js";
import { clearDownloads } from "../file-store.js";
import { LOCK_AFTER, lockAfterMinutes, lockNow, setLockAfterMinutes } from "../idle-lock.js";
import { exportSettings } from "../notify-settings.js";
import { drawQr } from "../qr.js";
import { BackupSection } from "./backup.js";
import { ConfirmDialog } from "./confirm.js";

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export class DevicesDialog {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {HTMLElement} topbar where the **Devices** button goes
   * @param {() => void} stop stops the app's views before the page signs out or locks
   * @param {AbortSignal} signal
   */
  constructor(client, topbar, stop, signal) {
    this.client = client;
    this.signal = signal;
    /** The code being served, if any. */
    this.code = null;
    this.expiry = null;
    const open = h("button", { type: "button", class: "secondary small", "aria-haspopup": "dialog", text: "Devices" });
    topbar.append(open);
    this.list = h("ul", { class: "device-list", "aria-label": "Devices" });
    this.status = h("p", { class: "hint", role: "status" });
    this.storage = h("p", { class: "hint" });
    this.error = h("p", { class: "error", role: "alert" });
    this.linkButton = h("button", { type: "button", text: "Link a device" });
    this.codeText = h("p", { class: "link-code", dir: "ltr" });
    this.qr = h("canvas", { class: "safety-qr", role: "img", "aria-label": "QR code of the link code", hidden: true });
    this.codeHint = h("p", { class: "hint" });
    this.linkStatus = h("p", { class: "hint", role: "status", "aria-live": "polite" });
    this.cancelLink = h("button", { type: "button", class: "secondary", text: "Stop linking" });
    this.codeRegion = h(
      "section",
      { "aria-label": "Link code", hidden: true, class: "stack" },
      this.codeText,
      this.qr,
      this.codeHint,
      this.linkStatus,
      this.cancelLink,
    );
    // The passphrase lock of this browser's copy.
    this.passState = h("p", { class: "hint" });
    this.passInput = h("input", { id: "new-passphrase", type: "password", autocomplete: "new-password", minlength: "8" });
    this.passButton = h("button", { type: "button", text: "Set passphrase" });
    this.removePass = h("button", { type: "button", class: "secondary", text: "Remove passphrase" });
    this.lockButton = h("button", { type: "button", class: "secondary", text: "Lock now" });
    this.lockAfter = h(
      "select",
      { id: "lock-after" },
      ...LOCK_AFTER.map((m) =>
        h("option", { value: String(m), text: m === 0 ? "Never" : m === 60 ? "1 hour" : m === 1 ? "1 minute" : `${m} minutes` }),
      ),
    );
    this.lockAfter.value = String(lockAfterMinutes());
    this.passStatus = h("p", { class: "hint", role: "status" });
    this.passError = h("p", { class: "error", role: "alert" });
    const lockSection = h(
      "section",
      { "aria-labelledby": "lock-title", class: "stack" },
      h("h3", { id: "lock-title", text: "Passphrase lock" }),
      this.passState,
      h("label", { for: "new-passphrase", text: "New passphrase" }),
      this.passInput,
      h("div", { class: "dialog-actions" }, this.removePass, this.passButton),
      h("label", { for: "lock-after", text: "Lock after" }),
      this.lockAfter,
      this.lockButton,
      this.passStatus,
      this.passError,
    );
    this.passButton.addEventListener("click", () => this.setPassphrase(), { signal });
    this.removePass.addEventListener("click", () => this.removePassphrase(), { signal });
    this.lockButton.addEventListener("click", () => lockNow(client, stop), { signal });
    this.lockAfter.addEventListener("change", () => setLockAfterMinutes(Number(this.lockAfter.value)), { signal });
    const close = h("button", { type: "button", class: "secondary", text: "Close" });
    const signOut = h("button", { type: "button", class: "danger", text: "Sign out" });
    this.dialog = h(
      "dialog",
      { id: "devices-dialog", "aria-labelledby": "devices-title" },
      h(
        "div",
        { class: "stack" },
        h("h2", { id: "devices-title", text: "Your devices" }),
        h("p", {
          class: "hint",
          text: "Every device here reads and sends as you, with keys of its own. An account can have five.",
        }),
        this.list,
        this.storage,
        this.status,
        this.error,
        this.linkButton,
        this.codeRegion,
        new BackupSection(client, signal).element,
        lockSection,
        h("div", { class: "dialog-actions" }, signOut, close),
      ),
    );
    document.body.append(this.dialog);
    this.confirm = new ConfirmDialog(
      { id: "remove-device-dialog", title: "Remove this device?", action: "Remove device", busy: "Removing the device…" },
      signal,
    );
    this.signOutDialog = new ConfirmDialog(
      { id: "sign-out-dialog", title: "Sign out of this browser?", action: "Sign out", busy: "Signing out…" },
      signal,
    );
    signOut.addEventListener(
      "click",
      () =>
        this.signOutDialog.ask(
          {
            text: "This browser stops being one of your devices. Everything quicproquo keeps here is deleted: your keys, this copy of your messages and the files you downloaded. Your other devices keep everything; to use this browser again, link it from one of them.",
          },
          async () => {
            await client.signOut();
            stop();
            await clearDownloads().catch(() => {});
            location.reload();
            return "You are signed out.";
          },
        ),
      { signal },
    );
    open.addEventListener("click", () => this.show(), { signal });
    close.addEventListener("click", () => this.dialog.close(), { signal });
    this.linkButton.addEventListener("click", () => this.link(), { signal });
    this.cancelLink.addEventListener("click", () => this.stopLinking(), { signal });
    signal.addEventListener("abort", () => {
      clearInterval(this.expiry);
      this.dialog.remove();
    });
  }

  /** Shows whether a passphrase locks this browser's copy, and what can be done. */
  showLock() {
    const has = this.client.hasPassphrase();
    setText(
      this.passState,
      has
        ? "A passphrase locks quicproquo in this browser: it opens only with it, and locks again after the time below."
        : "No passphrase: whoever can use this browser profile can open quicproquo. A passphrase (at least 8 characters) also encrypts the names in its storage.",
    );
    this.passButton.textContent = has ? "Change passphrase" : "Set passphrase";
    this.removePass.hidden = !has;
    this.lockButton.hidden = !has;
  }

  async setPassphrase() {
    setText(this.passError, "");
    const value = this.passInput.value;
    if (value.length < 8) {
      setText(this.passError, "Choose a passphrase of at least 8 characters.");
      return;
    }
    this.passButton.disabled = true;
    setText(this.passStatus, "Locking with your passphrase…");
    try {
      await this.client.setPassphrase(value);
      this.passInput.value = "";
      setText(this.passStatus, "Passphrase set. Remember it: without it this browser's copy cannot be opened.");
      window.dispatchEvent(new Event("qpq-lock-settings"));
    } catch (e) {
      setText(this.passStatus, "");
      setText(this.passError, describeError(e));
    } finally {
      this.passButton.disabled = false;
      this.showLock();
    }
  }

  async removePassphrase() {
    setText(this.passError, "");
    try {
      await this.client.removePassphrase();
      setText(this.passStatus, "Passphrase removed.");
    } catch (e) {
      setText(this.passError, describeError(e));
    }
    this.showLock();
  }

  async show() {
    setText(this.error, "");
    this.showLock();
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  async refresh() {
    setText(this.status, "Loading your devices…");
    let devices;
    try {
      devices = await this.client.devices();
    } catch (e) {
      setText(this.status, "");
      setText(this.error, describeError(e));
      return;
    }
    setText(this.status, "");
    this.list.replaceChildren(...devices.map((d) => this.row(d)));
    const kept = await navigator.storage?.persisted?.().catch(() => false);
    setText(
      this.storage,
      kept
        ? "This browser keeps quicproquo's data even when the disk runs low."
        : "This browser may clear quicproquo's data when the disk runs low; allowing it to keep the data (in the site's settings) prevents that.",
    );
  }

  /** @param {import("/pkg/qpq_web.js").DeviceView} d */
  row(d) {
    const name = d.name || `Device ${d.deviceId.slice(0, 8)}`;
    const when = [`added ${DATE.format(new Date(d.addedAt))}`];
    if (d.current) when.unshift("this device");
    else when.push(d.lastLogin ? `last connected ${DATE.format(new Date(d.lastLogin))}` : "not connected yet");
    const item = h(
      "li",
      { class: "device" },
      h("span", { class: "device-name", text: name }),
      h("span", { class: "hint", text: when.join(", ") }),
    );
    if (!d.current) {
      const remove = h("button", { type: "button", class: "danger small", text: "Remove device", "aria-label": `Remove device ${name}` });
      remove.addEventListener("click", () =>
        this.confirm.ask(
          {
            text: "It is signed out at once and taken out of every conversation: it receives nothing sent from now on. What it stored stays in that browser until it is opened again.",
          },
          async () => {
            await this.client.revokeDevice(d.deviceId);
            await this.refresh();
          },
        ),
      );
      item.append(remove);
    }
    return item;
  }

  async link() {
    setText(this.error, "");
    this.linkButton.disabled = true;
    let offer;
    try {
      offer = await this.client.openLink();
    } catch (e) {
      this.linkButton.disabled = false;
      setText(this.error, describeError(e));
      return;
    }
    this.code = offer.code;
    setText(this.codeText, offer.code);
    // A phone's camera opens the app with the code filled in (the fragment is not sent to
    // the server).
    try {
      const { qrCode } = await engineBindings();
      const qr = qrCode(`${location.origin}/#link=${offer.code}`);
      drawQr(this.qr, qr.size, qr.modules);
    } catch {
      // The typed code works without it.
      this.qr.hidden = true;
    }
    this.codeRegion.hidden = false;
    this.cancelLink.hidden = false;
    const tick = () => {
      const left = Math.max(0, offer.expiresAt - Date.now());
      const m = Math.floor(left / 60_000);
      const s = String(Math.floor((left % 60_000) / 1000)).padStart(2, "0");
      setText(
        this.codeHint,
        `On the new device open quicproquo, choose “I already have an account” and type this code, or scan the QR code with its camera. It works once, for ${m}:${s} more.`,
      );
    };
    tick();
    this.expiry = setInterval(tick, 1000);
    try {
      // The notification settings of each conversation go along.
      const settings = await exportSettings().catch(() => "");
      const linked = await this.client.serveLink(offer.code, (p) => this.progress(p), settings);
      const joined =
        linked.conversations === 1 ? "1 conversation" : `${linked.conversations} conversations`;
      setText(this.linkStatus, `Linked “${linked.name}”. It was added to ${joined}.`);
      await this.refresh();
    } catch (e) {
      setText(this.linkStatus, "");
      if (this.code) setText(this.error, describeError(e));
    } finally {
      clearInterval(this.expiry);
      setText(this.codeHint, "");
      setText(this.codeText, "");
      this.qr.hidden = true;
      this.cancelLink.hidden = true;
      this.code = null;
      this.linkButton.disabled = false;
    }
  }

  /** @param {import("/pkg/qpq_web.js").LinkProgressView} p */
  progress(p) {
    if (p.step === "waiting") setText(this.linkStatus, "Waiting for the new device…");
    else if (p.step === "registering") setText(this.linkStatus, `Adding “${p.name}” to your account…`);
    else if (p.step === "history")
      setText(this.linkStatus, `Sending your recent messages to the new device… ${Math.floor((100 * p.done) / Math.max(1, p.total))}%`);
    else setText(this.linkStatus, `Your new device is joining your conversations: ${p.done} of ${p.total}…`);
  }

  async stopLinking() {
    const code = this.code;
    this.code = null;
    this.cancelLink.hidden = true;
    if (code) await this.client.cancelLink(code).catch(() => {});
    this.codeRegion.hidden = true;
  }
}
