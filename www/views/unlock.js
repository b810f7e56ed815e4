// Opening an account that a passphrase locks: **Passphrase** → **Unlock**. The passphrase
// derives (Argon2id, in the engine) the key that opens the data key; a wrong one is said so.

import { byId, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { showScreen } from "./screens.js";

/**
 * Asks for the passphrase until the account opens.
 * @param {Pick<typeof import("/pkg/qpq_web.js").QpqClient, "unlock">} QpqClient QpqClient, or
 *   the engine handle's `statics`, which the tab running the engine carries out
 * @param {import("/pkg/qpq_web.js").QpqOptions} options
 * @returns {Promise<unknown>} what `unlock` resolved to
 */
export function askForPassphrase(QpqClient, options) {
  const form = document.getElementById("unlock-form");
  if (!form) {
    return Promise.reject(new Error("quicproquo is locked with a passphrase in this browser: open the app itself to unlock it"));
  }
  const input = byId("unlock-passphrase");
  const error = byId("unlock-error");
  const busy = byId("unlock-busy");
  const submit = byId("unlock-submit");
  showScreen("unlock");
  document.title = "quicproquo (locked)";
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      setText(error, "");
      if (!input.value) {
        setText(error, "Type your passphrase.");
        return;
      }
      submit.disabled = true;
      setText(busy, "Unlocking…");
      try {
        const client = await QpqClient.unlock(input.value, options);
        input.value = "";
        form.onsubmit = null;
        resolve(client);
      } catch (e) {
        setText(error, e?.code === "wrong_passphrase" ? "That passphrase is not the right one. Try again." : describeError(e));
        input.select();
      } finally {
        submit.disabled = false;
        setText(busy, "");
      }
    };
  });
}
