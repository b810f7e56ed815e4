// Creating an account: pick a name; the server says whether it is free.

import { byId, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { showScreen } from "./screens.js";

/**
 * Shows the sign-up form until an account is created.
 * @param {typeof import("/pkg/qpq_web.js").QpqClient} QpqClient
 * @param {import("/pkg/qpq_web.js").QpqOptions} options how to reach the gateway
 * @returns {Promise<import("/pkg/qpq_web.js").QpqClient>}
 */
export function askForAccount(QpqClient, options) {
  const form = byId("signup-form");
  const input = byId("signup-name");
  const error = byId("signup-error");
  const busy = byId("signup-busy");
  const submit = byId("signup-submit");
  showScreen("signup");
  document.title = "quicproquo: create an account";
  input.focus();

  return new Promise((resolve) => {
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
      input.setAttribute("aria-invalid", "false");
      setText(busy, "Creating your account…");
      try {
        const client = await QpqClient.register(name, options);
        form.onsubmit = null;
        resolve(client);
      } catch (e) {
        setText(error, describeError(e, name));
        input.setAttribute("aria-invalid", "true");
        input.focus();
        input.select();
      } finally {
        submit.disabled = false;
        setText(busy, "");
      }
    };
  });
}
