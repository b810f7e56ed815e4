// The members panel of a group: who is in it (display names beside addresses) and who is an
// admin; for admins, remove someone, add people, and a Role select per member (Admin,
// Member). A group made before roles has none: everyone manages it.

import { byId, h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { splitNames } from "../format.js";
import { personParts } from "./person.js";

export class MembersPanel {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {import("../profiles.js").Profiles} profiles
   * @param {AbortSignal} signal removes the listeners when the app stops
   */
  constructor(client, profiles, signal) {
    this.client = client;
    this.profiles = profiles;
    this.panel = byId("members-panel");
    this.toggle = byId("members-toggle");
    this.list = byId("members-list");
    this.form = byId("members-add");
    this.input = byId("members-add-input");
    this.submit = byId("members-add-submit");
    this.error = byId("members-error");
    /** @type {import("/pkg/qpq_web.js").ConversationView | null} */
    this.conversation = null;
    this.me = client.user();
    /** What the member list was drawn from (it is drawn again only when that changes). */
    this.drawn = "";

    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden), { signal });
    this.form.addEventListener("submit", (e) => this.add(e), { signal });
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.input.focus();
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView | null} c
   * @param {boolean} [force] draw the list even if the members are the same (names or pictures changed)
   */
  show(c, force = false) {
    const switched = c?.id !== this.conversation?.id;
    this.conversation = c;
    if (switched) {
      this.setOpen(false);
      setText(this.error, "");
      this.input.value = "";
    }
    if (!c) {
      this.drawn = "";
      return;
    }
    const manageable = c.kind === "group" && c.active && c.isAdmin;
    if (this.form.hidden !== !manageable) this.form.hidden = !manageable;
    const drawn = JSON.stringify([c.id, c.members, c.roles, c.admins, manageable]);
    if (drawn === this.drawn && !force) return;
    this.drawn = drawn;
    const items = c.members.map((user) => {
      const isMe = user === this.me;
      const admin = c.roles && c.admins.includes(user);
      const badge = admin ? h("span", { class: "badge", text: "Admin" }) : null;
      const role = manageable && c.roles ? this.roleSelect(c, user, admin) : null;
      const remove =
        manageable && !isMe
          ? h("button", { type: "button", class: "secondary small", "aria-label": `Remove ${user}`, text: "Remove", on: { click: (e) => this.remove(user, e.currentTarget) } })
          : null;
      return h("li", {}, ...personParts(this.profiles, user), badge, role, remove);
    });
    this.list.replaceChildren(...items);
  }

  /** The Role select of one member (its accessible name is "Role", inside the member's line). */
  roleSelect(c, user, admin) {
    const select = h(
      "select",
      { on: { change: () => this.setRole(user, select) } },
      h("option", { value: "admin", text: "Admin" }),
      h("option", { value: "member", text: "Member" }),
    );
    select.value = admin ? "admin" : "member";
    // The last admin stays one (a group keeps at least one).
    select.disabled = admin && c.admins.length === 1;
    return h("label", { class: "role" }, h("span", { class: "visually-hidden", text: "Role" }), select);
  }

  async setRole(user, select) {
    const c = this.conversation;
    if (!c) return;
    setText(this.error, "");
    select.disabled = true;
    try {
      await this.client.setAdmin(c.id, user, select.value === "admin");
    } catch (e) {
      setText(this.error, describeError(e));
      select.value = c.admins.includes(user) ? "admin" : "member";
      select.disabled = false;
    }
  }

  async add(event) {
    event.preventDefault();
    const c = this.conversation;
    const names = splitNames(this.input.value);
    setText(this.error, "");
    if (!c) return;
    if (names.length === 0) {
      setText(this.error, "Type the names of the people to add.");
      return;
    }
    this.submit.disabled = true;
    try {
      await this.client.addMembers(c.id, names);
      this.input.value = "";
    } catch (e) {
      setText(this.error, describeError(e));
    } finally {
      this.submit.disabled = false;
    }
  }

  async remove(user, button) {
    const c = this.conversation;
    if (!c) return;
    setText(this.error, "");
    button.disabled = true;
    try {
      await this.client.removeMembers(c.id, [user]);
    } catch (e) {
      setText(this.error, describeError(e));
      button.disabled = false;
    }
  }
}
