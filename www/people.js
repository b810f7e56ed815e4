// Who a conversation is with, for the views that act on a person rather than a conversation
// (message requests, blocking).

/**
 * The other person of a direct chat (its title when they already left).
 * @param {import("/pkg/qpq_web.js").ConversationView} c
 * @param {string} me
 */
export function otherPerson(c, me) {
  return c.members.find((u) => u !== me) ?? c.title;
}

/**
 * Who a message request is from: whoever invited this account, else the other person of a
 * direct chat, else whoever created the conversation.
 * @param {import("/pkg/qpq_web.js").ConversationView} c
 * @param {string} me
 */
export function requester(c, me) {
  if (c.invitedBy) return c.invitedBy;
  return c.kind === "direct" ? otherPerson(c, me) : c.createdBy;
}

/**
 * A bare name ("bob") on this account's server: "bob@localhost"; a full name as typed.
 * @param {string} name
 * @param {string} me this account's name@domain
 */
export function fullName(name, me) {
  const n = name.trim();
  return n.includes("@") ? n : `${n}@${me.slice(me.lastIndexOf("@") + 1)}`;
}
