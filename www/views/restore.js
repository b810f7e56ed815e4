// **Restore from backup** on the sign-up screen: reads the chosen backup file, opens it with
// the passphrase (with a progress bar) and makes this browser the account's device in place
// of its others. The conversations come back as their other members add this device.

import { byId, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { deviceName } from "../device-name.js";
import { importSettings } from "../notify-settings.js";

/**
 * Restores the account in the backup chosen in the restore form; resolves to the client, or
 * to null after showing why not.
 * @param {typeof import("/pkg/qpq_web.js").QpqClient} QpqClient
 * @param {import("/pkg/qpq_web.js").QpqOptions} options
 */
export async function restoreAccount(QpqClient, options) {
  const fileInput = byId("restore-file");
  const passInput = byId("restore-passphrase");
  const error = byId("restore-error");
  const busy = byId("restore-busy");
  const bar = byId("restore-progress");
  const submit = byId("restore-submit");
  const haveAccount = byId("signup-have-account");
  setText(error, "");
  const file = fileInput.files?.[0];
  if (!file) {
    setText(error, "Choose the backup file you saved (its name ends in .qpqbackup).");
    fileInput.focus();
    return null;
  }
  if (!passInput.value) {
    setText(error, "Type the passphrase you chose when you made the backup.");
    passInput.focus();
    return null;
  }
  submit.disabled = true;
  haveAccount.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  setText(busy, "Reading the backup…");
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    return await QpqClient.restore(bytes, passInput.value, deviceName(), options, (p) => {
      if (p.step === "deriving") setText(busy, "Opening the backup with your passphrase…");
      else if (p.step === "chunks") {
        bar.value = p.done / Math.max(1, p.total);
        setText(busy, `Opening the backup… ${Math.floor((100 * p.done) / Math.max(1, p.total))}%`);
      } else if (p.step === "registering") setText(busy, "Making this browser your device…");
      // The backed-up page's notification settings (one that cannot be stored keeps its default).
      else if (p.step === "settings") importSettings(p.settings).catch(() => {});
    });
  } catch (e) {
    setText(error, describeError(e));
    passInput.select();
    passInput.focus();
    return null;
  } finally {
    submit.disabled = false;
    haveAccount.disabled = false;
    bar.hidden = true;
    setText(busy, "");
  }
}
