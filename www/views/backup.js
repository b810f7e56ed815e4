// **Back up** in the Devices dialog: a file holding this account (its keys, the people it
// knows, every conversation's history and this page's settings), sealed under a passphrase
// the person chooses, saved through the browser's downloads. `restore.js` reads it back.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { exportSettings } from "../notify-settings.js";

/** The section of the Devices dialog that makes a backup. */
export class BackupSection {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {AbortSignal} signal
   */
  constructor(client, signal) {
    this.client = client;
    this.input = h("input", { id: "backup-passphrase", type: "password", autocomplete: "new-password", minlength: "8" });
    this.button = h("button", { type: "button", text: "Back up" });
    this.bar = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Backup progress" });
    this.status = h("p", { class: "hint", role: "status" });
    this.error = h("p", { class: "error", role: "alert" });
    this.element = h(
      "section",
      { "aria-labelledby": "backup-title", class: "stack" },
      h("h3", { id: "backup-title", text: "Backup" }),
      h("p", {
        class: "hint",
        text: "One file with your account, the people you know and all your messages, locked with a passphrase. With it you get your account back in a new browser even when none of your devices is left (it then replaces them). Keep the file and the passphrase apart.",
      }),
      h("label", { for: "backup-passphrase", text: "Passphrase" }),
      this.input,
      this.button,
      this.bar,
      this.status,
      this.error,
    );
    this.button.addEventListener("click", () => this.backUp(), { signal });
  }

  async backUp() {
    setText(this.error, "");
    setText(this.status, "");
    const passphrase = this.input.value;
    if (passphrase.length < 8) {
      setText(this.error, "Choose a passphrase of at least 8 characters for the backup.");
      this.input.focus();
      return;
    }
    this.button.disabled = true;
    this.bar.hidden = false;
    this.bar.value = 0;
    try {
      const settings = await exportSettings().catch(() => "");
      const bytes = await this.client.backup(passphrase, settings, (p) => {
        if (p.step === "deriving") setText(this.status, "Locking the backup with your passphrase…");
        if (p.step === "chunks") {
          this.bar.value = p.done / Math.max(1, p.total);
          setText(this.status, `Writing the backup… ${Math.floor((100 * p.done) / Math.max(1, p.total))}%`);
        }
      });
      const name = `quicproquo-${this.client.user().replace(/[^A-Za-z0-9._-]/g, "_")}-${new Date().toISOString().slice(0, 10)}.qpqbackup`;
      const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      this.input.value = "";
      setText(this.status, `Backup saved as ${name} (${Math.ceil(bytes.length / 1024)} KiB). Without its passphrase nobody can open it, you included.`);
    } catch (e) {
      setText(this.status, "");
      setText(this.error, describeError(e));
    } finally {
      this.bar.hidden = true;
      this.button.disabled = false;
    }
  }
}
