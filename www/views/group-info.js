// The conversation's info dialog (name, members, when and by whom it was created, the
// disappearing-message timer, leave; in a direct chat, Block — asked first — or Unblock the
// other person) and the account dialog (delete the account, after a confirmation). Both are
// built here, so index.html only provides the places for their buttons.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { durationText } from "../format.js";
import { clearDownloads } from "../file-store.js";
import { ConfirmDialog } from "./confirm.js";
import { LEVELS, conversationLevel, setConversationLevel } from "../notify-settings.js";
import { otherPerson } from "../people.js";
import { personParts } from "./person.js";
import { BLOCK_TEXT } from "./requests.js";

/** What the timer does. */
const TIMER_HINT = "Applies to every member, for messages sent from now on.";

/** The timers offered, in seconds (0: off). */
export const TIMERS = [0, 30, 300, 3600, 86400, 604800];

export class GroupInfo {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {HTMLElement} header where the "Group info" button goes
   * @param {import("./safety-number.js").SafetyNumberDialog} safety the Safety number screen
   * @param {import("../profiles.js").Profiles} profiles
   * @param {AbortSignal} signal removes the listeners when the app stops
   */
  constructor(client, header, safety, profiles, signal) {
    this.client = client;
    this.profiles = profiles;
    this.safety = safety;
    this.me = client.user();
    /** @type {import("/pkg/qpq_web.js").ConversationView | null} */
    this.conversation = null;
    /** The conversation whose notification level the select shows. */
    this.notifyFor = null;
    /** What the member list and the "Created by" line were drawn from (drawn again only when that changes). */
    this.drawnMembers = "";
    this.drawnCreated = "";
    this.button = h("button", { type: "button", id: "group-info-open", class: "secondary", "aria-haspopup": "dialog", text: "Group info" });
    header.append(this.button);

    this.title = h("h2", { id: "group-info-title", dir: "auto" });
    this.created = h("p", { class: "hint", dir: "auto" });
    this.members = h("ul", { class: "members-list", "aria-label": "Members of this conversation" });
    this.timer = h(
      "select",
      { id: "group-info-timer", "aria-describedby": "group-info-timer-hint" },
      ...TIMERS.map((s) => h("option", { value: String(s), text: durationText(s) })),
    );
    this.timerHint = h("p", { id: "group-info-timer-hint", class: "hint", text: TIMER_HINT });
    this.notify = h(
      "select",
      { id: "group-info-notify", "aria-describedby": "group-info-notify-hint" },
      ...LEVELS.map((l) => h("option", { value: l.value, text: l.label })),
    );
    this.leave = h("button", { type: "button", class: "danger", text: "Leave group" });
    this.blockHint = h("p", { id: "group-info-block-hint", class: "hint", dir: "auto" });
    this.block = h("button", { type: "button", class: "danger", "aria-describedby": "group-info-block-hint", text: "Block" });
    this.unblock = h("button", { type: "button", class: "secondary", "aria-describedby": "group-info-block-hint", text: "Unblock" });
    this.error = h("p", { class: "error", role: "alert" });
    this.close = h("button", { type: "button", class: "secondary", text: "Close" });
    this.dialog = h(
      "dialog",
      { id: "group-info-dialog", "aria-labelledby": "group-info-title" },
      h(
        "div",
        { class: "stack" },
        this.title,
        this.created,
        h("h3", { text: "Members" }),
        this.members,
        h("label", { for: "group-info-timer", text: "Disappearing messages" }),
        this.timer,
        this.timerHint,
        h("label", { for: "group-info-notify", text: "Notifications" }),
        this.notify,
        h("p", { id: "group-info-notify-hint", class: "hint", text: "Only on this device; the server is not told." }),
        this.leave,
        this.blockHint,
        this.block,
        this.unblock,
        this.error,
        h("div", { class: "dialog-actions" }, this.close),
      ),
    );
    document.body.append(this.dialog);
    // Its title names the person when it opens.
    const blockWords = { id: "block-dialog", title: "Block", action: "Block", busy: "Blocking…" };
    this.blockDialog = new ConfirmDialog(blockWords, signal);

    this.button.addEventListener("click", () => this.open(), { signal });
    this.close.addEventListener("click", () => this.dialog.close(), { signal });
    this.timer.addEventListener("change", () => this.setTimer(), { signal });
    this.notify.addEventListener("change", () => this.setNotify(), { signal });
    this.leave.addEventListener("click", () => this.leaveGroup(), { signal });
    this.block.addEventListener("click", () => this.askBlock(), { signal });
    this.unblock.addEventListener("click", () => this.unblockOther(), { signal });
    signal.addEventListener("abort", () => this.dialog.remove());
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView | null} c
   * @param {boolean} [force] draw the member list even if the members are the same (names or pictures changed)
   */
  show(c, force = false) {
    if (c?.id !== this.conversation?.id && this.dialog.open) this.dialog.close();
    this.conversation = c;
    if (!c) {
      this.drawnMembers = "";
      return;
    }
    const group = c.kind === "group";
    setText(this.button, group ? "Group info" : "Chat info");
    setText(this.title, group ? c.title || "Untitled group" : `Chat with ${c.title}`);
    if (this.drawnCreated !== `${c.createdBy} ${c.createdAt}`) {
      this.drawnCreated = `${c.createdBy} ${c.createdAt}`;
      const when = c.createdAt ? new Date(c.createdAt).toLocaleString() : "an unknown time";
      setText(this.created, `Created by ${c.createdBy === this.me ? "you" : c.createdBy} on ${when}`);
    }
    const drawnMembers = JSON.stringify([c.id, c.members, c.verifiedMembers, c.changedMembers]);
    if (drawnMembers !== this.drawnMembers || force) {
      this.drawnMembers = drawnMembers;
      this.members.replaceChildren(...c.members.map((u) => this.member(c, u)));
    }
    const value = String(c.disappearSecs);
    if (!TIMERS.includes(c.disappearSecs) && !this.timer.querySelector(`option[value="${value}"]`)) {
      this.timer.append(h("option", { value, text: durationText(c.disappearSecs) }));
    }
    if (document.activeElement !== this.timer) this.timer.value = value;
    // Only admins change a group's timer (in a direct chat, both people).
    // Only on change: setting an element's state, even to what it is, makes the page restyle it.
    const fixed = !c.active || !c.isAdmin;
    if (this.timer.disabled !== fixed) this.timer.disabled = fixed;
    setText(this.timerHint, c.isAdmin ? TIMER_HINT : "Only the group's admins change this.");
    if (c.id !== this.notifyFor) {
      this.notifyFor = c.id;
      conversationLevel(c.id).then(
        (level) => c.id === this.conversation?.id && (this.notify.value = level),
        (e) => setText(this.error, describeError(e)),
      );
    }
    if (this.leave.hidden !== (!group || !c.active)) this.leave.hidden = !group || !c.active;
    const other = group ? null : otherPerson(c, this.me);
    const blocked = !!other && this.client.blockedUsers().includes(other);
    setText(
      this.blockHint,
      !other ? "" : blocked ? `${other} is blocked: their messages do not reach you.` : `Blocking ${other} stops their messages reaching you. They are not told.`,
    );
    if (this.block.hidden !== (!other || blocked)) this.block.hidden = !other || blocked;
    if (this.unblock.hidden !== (!other || !blocked)) this.unblock.hidden = !other || !blocked;
  }

  /**
   * A member's line: the name (and address), whether their profile and safety number are
   * verified, and a way to the safety number.
   */
  member(c, user) {
    if (user === this.me) return h("li", {}, ...personParts(this.profiles, user));
    const state = c.changedMembers?.includes(user) ? "safety number changed" : c.verifiedMembers?.includes(user) ? "verified" : null;
    return h(
      "li",
      {},
      ...personParts(this.profiles, user),
      state ? h("span", { class: state === "verified" ? "badge" : "badge warn", text: state }) : null,
      h("button", {
        type: "button",
        class: "secondary small",
        "aria-label": `Safety number of ${user}`,
        text: "Safety number",
        on: { click: () => this.safety.open(user) },
      }),
    );
  }

  open() {
    setText(this.error, "");
    if (this.conversation) this.show(this.conversation, true);
    this.dialog.showModal();
  }

  async setTimer() {
    const c = this.conversation;
    if (!c) return;
    setText(this.error, "");
    try {
      await this.client.setDisappearing(c.id, Number(this.timer.value));
    } catch (e) {
      setText(this.error, describeError(e));
      this.timer.value = String(c.disappearSecs);
    }
  }

  async setNotify() {
    const c = this.conversation;
    if (!c) return;
    setText(this.error, "");
    try {
      await setConversationLevel(c.id, this.notify.value);
    } catch (e) {
      setText(this.error, describeError(e));
    }
  }

  /** Asks whether to block the other person of a direct chat, and does if told so. */
  askBlock() {
    const c = this.conversation;
    if (!c || c.kind === "group") return;
    const other = otherPerson(c, this.me);
    setText(this.error, "");
    this.blockDialog.ask(
      { title: `Block ${other}?`, text: `${BLOCK_TEXT} You can unblock them here in Chat info, or in Contacts.` },
      () => this.client.block(other),
    );
  }

  /** Unblocks the other person of a direct chat (nothing to ask: it undoes a block). */
  async unblockOther() {
    const c = this.conversation;
    if (!c || c.kind === "group") return;
    setText(this.error, "");
    this.unblock.disabled = true;
    try {
      await this.client.unblock(otherPerson(c, this.me));
    } catch (e) {
      setText(this.error, describeError(e));
    } finally {
      this.unblock.disabled = false;
    }
  }

  async leaveGroup() {
    const c = this.conversation;
    if (!c) return;
    setText(this.error, "");
    this.leave.disabled = true;
    try {
      await this.client.leaveConversation(c.id);
      this.dialog.close();
    } catch (e) {
      setText(this.error, describeError(e));
    } finally {
      this.leave.disabled = false;
    }
  }
}

/**
 * The "Delete account" button in the top bar and its confirmation dialog. After the server
 * deleted the account, everything in this browser is gone and the page starts over.
 * @param {import("/pkg/qpq_web.js").QpqClient} client
 * @param {HTMLElement} topbar
 * @param {() => void} stop stops the app before the client is consumed
 * @param {AbortSignal} signal
 */
export function wireDeleteAccount(client, topbar, stop, signal) {
  const open = h("button", { type: "button", class: "secondary small", "aria-haspopup": "dialog", text: "Delete account" });
  topbar.append(open);
  const dialog = new ConfirmDialog(
    {
      id: "delete-account-dialog",
      title: "Delete your account?",
      action: "Delete account",
      busy: "Telling your contacts and deleting your account…",
    },
    signal,
  );
  const text =
    "Your account, devices and messages are removed from the server and from this browser. Your contacts will see that you deleted your account. This cannot be undone.";
  open.addEventListener(
    "click",
    () =>
      dialog.ask({ text }, async () => {
        stop();
        await client.deleteAccount();
        // Files downloaded into this browser go with the account.
        await clearDownloads().catch(() => {});
        location.reload();
        return "Your account was deleted.";
      }),
    { signal },
  );
}
