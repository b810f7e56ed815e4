// The open conversation's heading: its title (for a direct chat the engine already puts the
// other person's verified display name there), what kind of chat it is — with the person's
// address beside their name, since a display name is chosen by its owner and proves nothing —
// their status, and their picture (a group: its initials).

import { byId, setText } from "../dom.js";
import { otherPerson } from "../people.js";

export class ChatHeading {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {import("../profiles.js").Profiles} profiles
   */
  constructor(client, profiles) {
    this.me = client.user();
    this.profiles = profiles;
    this.title = byId("chat-title");
    this.subtitle = byId("chat-subtitle");
    this.status = byId("chat-status");
    this.avatar = byId("chat-avatar");
    this.avatar.replaceChildren();
    /** Whom the avatar was drawn for. */
    this.avatarOf = "";
  }

  /**
   * @param {import("/pkg/qpq_web.js").ConversationView} c
   * @param {boolean} [force] draw the avatar even if it is the same person's (their picture changed)
   */
  show(c, force = false) {
    const title = c.title || "Untitled";
    setText(this.title, title);
    const other = c.kind === "direct" ? otherPerson(c, this.me) : null;
    const profile = other ? this.profiles.of(other) : undefined;
    const parts = [];
    if (c.request) parts.push("Message request");
    if (other && title !== other) parts.push(other);
    parts.push(c.kind === "group" ? `Group · ${c.members.length} members` : "Direct chat");
    if (other && profile?.forged) parts.push("Profile not verified");
    setText(this.subtitle, parts.join(" · "));
    const status = profile?.status ?? "";
    setText(this.status, status);
    if (this.status.hidden !== !status) this.status.hidden = !status;
    if (force || this.avatarOf !== `${other} ${title}`) {
      this.avatarOf = `${other} ${title}`;
      this.profiles.fill(this.avatar, other, title);
    }
  }
}
