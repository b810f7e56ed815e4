// Showing a notification for a conversation's new messages, the same whether the service
// worker shows it (after a push, the app closed) or a page in the background does: one per
// conversation (tagged with its id, so a newer one replaces it), titled with the sender — their
// verified display name when they have one, else their address — (and the group), with the
// last message's text, or "New message" when the person chose to hide it, and nothing when the
// conversation's setting (All, Mentions, Muted) says no. A message request (someone who is not
// a contact) shows none of its text and no name they chose: only their address and that they
// ask.
//
// A call that rings while the app is closed (the service worker took its offer from the queue)
// shows "Incoming call" and who calls, or only "Incoming call" when the person chose to hide
// what notifications say, tagged with the call so that a later look replaces it, and closed
// once the call stops ringing. Muted conversations do not ring; All and Mentions do (a call is
// addressed to the person).

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

/** The tag of a call's notification. */
function callTag(id) {
  return `call:${id}`;
}

/**
 * Shows that a call rings.
 * @param {ServiceWorkerRegistration} registration
 * @param {{ id: string, request?: boolean }} conversation
 * @param {{ sender: string, senderName?: string, call: { id: string, video: boolean } }} entry
 *   the call's history entry
 * @returns {Promise<boolean>} whether a notification was shown
 */
export async function notifyCall(registration, conversation, entry) {
  if ((await conversationLevel(conversation.id)) === "muted") return false;
  const hide = await hideContent();
  // Someone who is not a contact is named by their address only, as their requests are.
  const from = conversation.request ? entry.sender : entry.senderName || entry.sender;
  const kind = entry.call.video ? "video call" : "voice call";
  await registration.showNotification("Incoming call", {
    body: hide ? "" : `${from} is calling you (${kind})`,
    tag: callTag(entry.call.id),
    renotify: true,
    icon: "/icons/icon-192.png",
    data: { conversation: conversation.id, call: entry.call.id },
  });
  return true;
}

/** The notifications of calls now showing: `{ notification, conversation, call }`. */
export async function callNotifications(registration) {
  const shown = (await registration.getNotifications()) ?? [];
  return shown
    .filter((n) => n.data?.call)
    .map((n) => ({ notification: n, conversation: n.data.conversation, call: n.data.call }));
}

/**
 * Closes the notification of call `id`, if one shows (the call was taken, declined or is
 * over). From a page it goes through the service worker's registration.
 */
export async function closeCallNotification(id) {
  try {
    const registration = self.registration ?? (await navigator.serviceWorker?.getRegistration("/"));
    for (const n of (await registration?.getNotifications({ tag: callTag(id) })) ?? []) n.close();
  } catch {
    // No service worker (or no notifications): nothing shows.
  }
}
