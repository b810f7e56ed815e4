// Showing a notification for a conversation's new messages, the same whether the service
// worker shows it (after a push, the app closed) or a page in the background does: one per
// conversation (tagged with its id, so a newer one replaces it), titled with the sender — their
// verified display name when they have one, else their address — (and the group), with the
// last message's text, or "New message" when the person chose to hide it, and nothing when the
// conversation's setting (All, Mentions, Muted) says no. A message request (someone who is not
// a contact) shows none of its text and no name they chose: only their address and that they
// ask.

import { conversationLevel, hideContent, notifies } from "./notify-settings.js";

/**
 * @param {ServiceWorkerRegistration} registration
 * @param {string} me this account's user
 * @param {{ id: string, kind: string, title: string, request?: boolean, invitedBy?: string }} conversation
 * @param {{ sender: string, senderName?: string, kind: string, text: string }[]} messages incoming, oldest first
 * @returns {Promise<boolean>} whether a notification was shown
 */
export async function notifyConversation(registration, me, conversation, messages) {
  const level = await conversationLevel(conversation.id);
  const shown = messages.filter((m) => notifies(level, m.text, me));
  if (!shown.length) return false;
  const last = shown.at(-1);
  let title;
  let body;
  if (conversation.request) {
    title = "Message request";
    body = `${conversation.invitedBy || last.sender} wants to send you messages. Open quicproquo to accept or delete the request.`;
  } else {
    const hide = await hideContent();
    const from = last.senderName || last.sender;
    title = conversation.kind === "group" ? `${from} in ${conversation.title || "a group"}` : from;
    const more = shown.length > 1 ? ` (+${shown.length - 1} more)` : "";
    body = hide ? "New message" : `${last.kind === "file" ? `File: ${last.text}` : last.text}${more}`;
  }
  await registration.showNotification(title, {
    body,
    tag: conversation.id,
    renotify: true,
    icon: "/icons/icon-192.png",
    data: { conversation: conversation.id },
  });
  return true;
}
