// A member as the member lists show them: picture, display name with the address beside it
// (a display name is whatever its owner typed, so the address is what identifies them), and
// "Profile not verified" when someone passed along a profile of theirs whose signature did not
// check out (the engine did not use it: the name shown is still the verified one, or none).

import { h } from "../dom.js";

/**
 * The parts of a member's line, to put in an `li` before its buttons.
 * @param {import("../profiles.js").Profiles} profiles
 * @param {string} user
 * @returns {HTMLElement[]}
 */
export function personParts(profiles, user) {
  const me = user === profiles.me;
  const profile = profiles.of(user);
  const name = profile?.name || "";
  const avatar = profiles.avatar("member-avatar");
  profiles.fill(avatar, user, name || user);
  const shown = name || user;
  const who = h(
    "span",
    { class: "member-who" },
    h("span", { class: "member-name", dir: "auto", text: me ? `${shown} (you)` : shown }),
    name ? h("span", { class: "member-address hint", dir: "auto", text: user }) : null,
    profile?.forged ? h("span", { class: "badge warn", text: "Profile not verified" }) : null,
  );
  return [avatar, who];
}
