// What a person can do to one message: react, reply, and for their own messages edit and
// delete. Each message row gets a "Message actions" button that opens a small menu; "React"
// opens a picker of emoji. Reactions show under the message as toggle buttons with counts.

import { h } from "../dom.js";

/** The reactions offered by the picker. */
export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

/**
 * The actions block of a message row: the "Message actions" button, its menu and the picker.
 * @param {import("/pkg/qpq_web.js").MessageView} m
 * @param {{ react(m: object, emoji: string, remove: boolean): void, reply(m: object): void,
 *           edit(m: object): void, remove(m: object): void }} on
 * @param {boolean} active false when this device can no longer write to the conversation
 */
export function messageActions(m, on, active) {
  if (!active || m.kind === "deleted" || m.kind === "system") return null;
  const menu = h("div", { class: "msg-menu", role: "group", "aria-label": "Message actions menu", hidden: true });
  const picker = h("div", { class: "msg-picker", role: "group", "aria-label": "Pick a reaction", hidden: true });
  const toggle = h("button", {
    type: "button",
    class: "msg-actions-toggle secondary small",
    "aria-label": "Message actions",
    "aria-expanded": "false",
    text: "⋯",
  });
  const close = () => {
    menu.hidden = true;
    picker.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
  };
  toggle.addEventListener("click", () => {
    const open = menu.hidden;
    close();
    menu.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  });
  const item = (label, handler) =>
    h("button", {
      type: "button",
      class: "secondary small",
      text: label,
      on: {
        click: () => {
          close();
          handler();
        },
      },
    });
  menu.append(
    h("button", {
      type: "button",
      class: "secondary small",
      text: "React",
      on: {
        click: () => {
          menu.hidden = true;
          picker.hidden = false;
          picker.querySelector("button")?.focus();
        },
      },
    }),
    item("Reply", () => on.reply(m)),
  );
  if (m.outgoing && m.kind === "text") menu.append(item("Edit", () => on.edit(m)));
  if (m.outgoing) menu.append(item("Delete", () => on.remove(m)));
  for (const emoji of REACTIONS) {
    const mine = m.reactions.some((r) => r.emoji === emoji && r.mine);
    picker.append(
      h("button", {
        type: "button",
        class: "secondary small",
        "aria-label": `React with ${emoji}`,
        text: emoji,
        on: {
          click: () => {
            close();
            on.react(m, emoji, mine);
          },
        },
      }),
    );
  }
  return h("div", { class: "msg-actions" }, toggle, menu, picker);
}

/**
 * The reactions under a message: one toggle button per emoji with its count; its name says
 * who reacted, and pressing it adds or takes back your own.
 */
export function reactionBar(m, on, active) {
  if (!m.reactions.length) return null;
  return h(
    "div",
    { class: "msg-reactions", role: "group", "aria-label": "Reactions" },
    ...m.reactions.map((r) =>
      h("button", {
        type: "button",
        class: `reaction${r.mine ? " mine" : ""}`,
        "aria-pressed": String(r.mine),
        "aria-label": `${r.emoji} ${r.users.length}: ${r.users.join(", ")}`,
        title: r.users.join(", "),
        disabled: !active,
        text: `${r.emoji} ${r.users.length}`,
        on: { click: () => on.react(m, r.emoji, r.mine) },
      }),
    ),
  );
}

/** The quoted message above a reply. */
export function quoteBlock(m) {
  if (!m.replyTo) return null;
  const q = m.replyTo;
  return h(
    "blockquote",
    { class: "msg-quote", "aria-label": "Replying to" },
    q.sender ? h("span", { class: "quote-sender", dir: "auto", text: q.sender }) : null,
    h("span", { class: "quote-text", dir: "auto", text: q.text }),
  );
}
