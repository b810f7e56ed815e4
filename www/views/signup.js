// Creating an account (pick a name; the server says whether it is free), or making this
// browser another device of an existing account: with a link code from one of its devices,
// or from a backup file (`restore.js`).

import { byId, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { deviceName } from "../device-name.js";
import { importSettings } from "../notify-settings.js";
import { restoreAccount } from "./restore.js";
import { showScreen } from "./screens.js";

/**
 * Shows the sign-up form until an account is created or linked.
 * @param {Pick<typeof import("/pkg/qpq_web.js").QpqClient, "register" | "link" | "restore">} QpqClient
 *   QpqClient, or the engine handle's `statics`, which the tab running the engine carries out
 * @param {import("/pkg/qpq_web.js").QpqOptions} options how to reach the gateway
 * @returns {Promise<unknown>} what the method that opened the account resolved to
 */
export function askForAccount(QpqClient, options) {
  const form = byId("signup-form");
  const input = byId("signup-name");
  const error = byId("signup-error");
  const busy = byId("signup-busy");
  const submit = byId("signup-submit");
  // The widget's page (embed.html) has no linking: only the app's does.
  const haveAccount = document.getElementById("signup-have-account");
  const linkForm = document.getElementById("link-form");
  const restoreForm = document.getElementById("restore-form");
  showScreen("signup");
  document.title = "quicproquo: create an account";
  input.focus();

  return new Promise((resolve) => {
    const done = (client) => {
      form.onsubmit = null;
      if (linkForm) linkForm.onsubmit = null;
      if (restoreForm) restoreForm.onsubmit = null;
      if (haveAccount) haveAccount.onclick = null;
      keepStorage();
      resolve(client);
    };
    if (haveAccount && linkForm && restoreForm) {
      offerLinking(QpqClient, options, { form, input, haveAccount, linkForm, restoreForm }, done);
    }
    form.onsubmit = async (event) => {
      event.preventDefault();
      const name = input.value.trim();
      setText(error, "");
      if (!name) {
        setText(error, "Type the name you want, for example alice.");
        input.focus();
        return;
      }
      submit.disabled = true;
      if (haveAccount) haveAccount.disabled = true;
      input.setAttribute("aria-invalid", "false");
      setText(busy, "Creating your account…");
      try {
        done(await QpqClient.register(name, options));
      } catch (e) {
        const yours =
          " If it is yours, choose “I already have an account”: link this browser from a device where you are signed in, or restore from your backup file.";
        setText(error, describeError(e, name) + (e?.code === "user_exists" && haveAccount ? yours : ""));
        input.setAttribute("aria-invalid", "true");
        input.focus();
        input.select();
      } finally {
        submit.disabled = false;
        if (haveAccount) haveAccount.disabled = false;
        setText(busy, "");
      }
    };
  });
}

/**
 * Wires **I already have an account** (it swaps the sign-up form for the link and restore
 * forms, and back) and those forms; `done` gets the linked or restored client.
 */
function offerLinking(QpqClient, options, { form, input, haveAccount, linkForm, restoreForm }, done) {
  haveAccount.onclick = () => {
    const linking = linkForm.hidden;
    linkForm.hidden = !linking;
    restoreForm.hidden = !linking;
    form.hidden = linking;
    haveAccount.textContent = linking ? "Create a new account instead" : "I already have an account";
    document.title = linking ? "quicproquo: link this device" : "quicproquo: create an account";
    (linking ? byId("link-code") : input).focus();
  };
  // A phone's camera opened the QR code of another device's link code.
  const fromQr = /^#link=([0-9A-Za-z-]{1,40})$/.exec(location.hash);
  if (fromQr) {
    history.replaceState(null, "", location.pathname + location.search);
    haveAccount.onclick();
    byId("link-code").value = fromQr[1];
  }
  linkForm.onsubmit = (event) => {
    event.preventDefault();
    linkDevice(QpqClient, options).then((client) => client && done(client));
  };
  restoreForm.onsubmit = (event) => {
    event.preventDefault();
    restoreAccount(QpqClient, options).then((client) => client && done(client));
  };
}

/**
 * Links this browser with the code typed into the link form; resolves to the client, or to
 * null after showing why not.
 */
async function linkDevice(QpqClient, options) {
  const input = byId("link-code");
  const error = byId("link-error");
  const busy = byId("link-busy");
  const submit = byId("link-submit");
  const haveAccount = byId("signup-have-account");
  const code = input.value.trim();
  setText(error, "");
  if (!code) {
    setText(error, "Type the code your other device shows under Link a device.");
    input.focus();
    return null;
  }
  submit.disabled = true;
  haveAccount.disabled = true;
  input.setAttribute("aria-invalid", "false");
  setText(busy, "Asking your other device…");
  try {
    return await QpqClient.link(code, deviceName(), options, (p) => {
      if (p.step === "waiting") setText(busy, "Waiting for your other device to answer…");
      // The other device's notification settings (a setting that cannot be stored is left at its default).
      if (p.step === "settings") importSettings(p.settings).catch(() => {});
    });
  } catch (e) {
    setText(error, describeError(e));
    input.setAttribute("aria-invalid", "true");
    input.focus();
    input.select();
    return null;
  } finally {
    submit.disabled = false;
    haveAccount.disabled = false;
    setText(busy, "");
  }
}

/**
 * Asks the browser to keep this site's data (keys and messages) even when space runs low; the
 * sign-up screen says why, and the Devices dialog shows the answer.
 */
function keepStorage() {
  navigator.storage?.persist?.().catch(() => {});
}
