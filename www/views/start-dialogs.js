// The "New chat" and "New group" dialogs.

import { byId, h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { splitNames } from "../format.js";

/**
 * Wires a dialog: an opener button, a form whose submit runs `action` (which resolves to the
 * new conversation's id or throws), an error line, and Cancel buttons (`data-close`).
 */
function wireDialog({ dialog, opener, form, first, submit, error, action, onDone, signal }) {
  opener.addEventListener(
    "click",
    () => {
      form.reset();
      setText(error, "");
      dialog.showModal();
      first.focus();
    },
    { signal },
  );
  for (const b of dialog.querySelectorAll("[data-close]")) {
    b.addEventListener("click", () => dialog.close(), { signal });
  }
  form.addEventListener(
    "submit",
    async (event) => {
      event.preventDefault();
      setText(error, "");
      submit.disabled = true;
      try {
        const id = await action();
        dialog.close();
        onDone(id);
      } catch (e) {
        setText(error, e instanceof InputProblem ? e.message : describeError(e));
      } finally {
        submit.disabled = false;
      }
    },
    { signal },
  );
}

/** A problem with what was typed, found before asking the engine. */
class InputProblem extends Error {}

/**
 * @param {import("/pkg/qpq_web.js").QpqClient} client
 * @param {(id: string) => void} onOpen opens a conversation
 * @param {(user: string) => void} showSafetyNumber opens the Safety number screen of a person
 * @param {AbortSignal} signal
 */
export function wireStartDialogs(client, onOpen, showSafetyNumber, signal) {
  const recipient = byId("new-chat-recipient");
  // When the person's safety number changed since it was verified, the way to compare it.
  const safety = h("button", { type: "button", class: "secondary", hidden: true, text: "Safety number" });
  byId("new-chat-error").after(safety);
  safety.addEventListener("click", () => showSafetyNumber(safety.dataset.user ?? ""), { signal });
  wireDialog({
    dialog: byId("new-chat-dialog"),
    opener: byId("new-chat-open"),
    form: byId("new-chat-form"),
    first: recipient,
    submit: byId("new-chat-submit"),
    error: byId("new-chat-error"),
    onDone: onOpen,
    signal,
    action: async () => {
      const name = recipient.value.trim();
      safety.hidden = true;
      if (!name) throw new InputProblem("Type the name of the person to chat with.");
      try {
        return await client.startChat(name);
      } catch (e) {
        if (e?.code === "safety_number_changed") {
          safety.dataset.user = name;
          safety.hidden = false;
        }
        throw e;
      }
    },
  });

  const groupName = byId("new-group-name");
  const members = byId("new-group-members");
  wireDialog({
    dialog: byId("new-group-dialog"),
    opener: byId("new-group-open"),
    form: byId("new-group-form"),
    first: groupName,
    submit: byId("new-group-submit"),
    error: byId("new-group-error"),
    onDone: onOpen,
    signal,
    action: async () => {
      const name = groupName.value.trim();
      const names = splitNames(members.value);
      if (!name) throw new InputProblem("Give the group a name.");
      if (names.length === 0) throw new InputProblem("Add at least one member.");
      return client.createGroup(name, names);
    },
  });
}
