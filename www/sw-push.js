// What the service worker does with a push: the push itself says nothing (the server sends an
// encrypted, padded "wake"), so the worker opens the account with the engine, connects over
// WebSocket, lets the queued messages arrive (they are decrypted and stored as in a tab, and
// acknowledged), and shows a notification per conversation with the sender and the text — or
// "New message" when the person chose to hide it — following each conversation's
// Notifications setting (notify-settings.js). A conversation open in a focused tab gets none.
//
// A call offer taken from the queue here rings as a notification ("Incoming call", notify.js)
// while its entry in the conversation still rings (not answered, declined or hung up in the
// same batch, and younger than RING_MS); each push also closes the call notifications whose
// call stopped ringing since. The caller keeps sending its offer while it rings, so the app
// opened from the notification gets one and rings itself.
//
// The engine is owned by one context at a time: the worker takes the Web Lock "qpq-engine"
// only if no tab holds it (a tab that does is connected and receives the messages itself),
// and releases it once the engine has stopped. With no page of the app open, whoever holds
// the lock is on its way out (the tabs' SharedWorker disconnects and closes once its last tab
// is gone), so the worker waits for it, up to HANDOVER_MS, rather than drop the push.

import initEngine, { QpqClient } from "/pkg/qpq_web.js";
import { takeEngineLockWithin, tryTakeEngineLock } from "./engine-lock.js";
import { callNotifications, notifyCall, notifyConversation } from "./notify.js";
import { RING_MS } from "./calls/calls.js";

const WASM_URL = "/pkg/qpq_web_bg.wasm";
/** Queued messages have all arrived once nothing happened for this long after connecting… */
const SETTLE_MS = 700;
/** …or, whatever happens, after this long. */
const FETCH_LIMIT_MS = 20_000;
/** How long a push waits for an engine whose pages have all closed to let go of the lock. */
const HANDOVER_MS = 10_000;
/** The app's own pages (a notification opens the chat in one). */
const APP_PAGES = ["/", "/index.html"];
/** The pages that run the engine (through the tabs' worker, or as the leading tab). */
const ENGINE_PAGES = [...APP_PAGES, "/embed.html"];

let engine = null;

/** Starts the engine once per worker life, from the precached copy when there is one. */
function loadEngine() {
  engine ??= (async () => {
    const response = (await caches.match(WASM_URL)) ?? (await fetch(WASM_URL));
    if (!response.ok) throw new Error(`the engine could not be loaded (HTTP ${response.status})`);
    await initEngine({ module_or_path: await response.arrayBuffer() });
  })().catch((e) => {
    engine = null;
    throw e;
  });
  return engine;
}

/** Handles one push event. */
export async function onPush() {
  const lock = (await tryTakeEngineLock()) ?? ((await enginePagesOpen()) ? null : await takeEngineLockWithin(HANDOVER_MS));
  if (!lock) return; // a tab has the engine: it is online and shows what arrives
  let fresh;
  try {
    await loadEngine();
    fresh = await receiveQueued();
  } finally {
    lock.release();
  }
  if (fresh?.locked) await notifyLocked();
  else if (fresh) {
    for (const n of fresh.over) n.close();
    await notify(fresh.me, fresh.conversations);
    for (const { conversation, entry } of fresh.rings) await notifyCall(self.registration, conversation, entry);
  }
}

/** Whether a page that runs the engine is open. */
async function enginePagesOpen() {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.some((w) => ENGINE_PAGES.includes(new URL(w.url).pathname));
}

/** Whether a history entry is an incoming call that still rings. */
function rings(m) {
  return m.kind === "call" && !m.outgoing && m.call?.outcome === "ringing" && Date.now() - m.sentAt < RING_MS;
}

/** What a push can say when a passphrase locks the account: that there is something to read. */
async function notifyLocked() {
  await self.registration.showNotification("quicproquo", {
    body: "You have new messages. Open quicproquo and unlock it to read them.",
    tag: "qpq-locked",
  });
}

/**
 * Opens the account, connects, waits until the queue has been delivered, and returns the
 * new incoming messages per conversation, the calls that came and still ring, and the call
 * notifications showing whose call no longer rings.
 */
async function receiveQueued() {
  let client;
  try {
    client = await QpqClient.open({ transport: "websocket" });
  } catch (e) {
    // A passphrase locks the account: nothing can be read here; say that something came.
    if (e?.code === "locked") return { locked: true };
    throw e;
  }
  if (!client) return null;
  try {
    // Where each conversation's history ends now (indices may have gaps: disappeared messages).
    const nextIndex = (id) => (client.history(id).at(-1)?.index ?? -1) + 1;
    const before = new Map(client.conversations().map((c) => [c.id, nextIndex(c.id)]));
    await new Promise((resolve) => {
      let online = false;
      let quiet = null;
      const limit = setTimeout(resolve, FETCH_LIMIT_MS);
      const settle = () => {
        clearTimeout(quiet);
        quiet = setTimeout(() => {
          clearTimeout(limit);
          resolve();
        }, SETTLE_MS);
      };
      client.onEvent((event) => {
        if (event.type === "connection") online = event.state === "online";
        if (online) settle();
      });
      client.start();
    });
    const conversations = [];
    const ringing = [];
    for (const c of client.conversations()) {
      const fresh = client.historySince(c.id, before.get(c.id) ?? 0);
      const messages = fresh.filter((m) => !m.outgoing && (m.kind === "text" || m.kind === "file"));
      if (messages.length) conversations.push({ conversation: c, messages });
      for (const entry of fresh.filter(rings)) ringing.push({ conversation: c, entry });
    }
    const over = [];
    for (const { notification, conversation, call } of await callNotifications(self.registration)) {
      let entry = null;
      try {
        entry = client.history(conversation).findLast((m) => m.kind === "call" && m.call?.id === call);
      } catch {
        // The conversation is gone here: so is its call.
      }
      if (!entry || !rings(entry)) over.push(notification);
    }
    return { me: client.user(), conversations, rings: ringing, over };
  } finally {
    await client.stop();
  }
}

async function notify(me, conversations) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const { conversation: c, messages } of conversations) {
    if (windows.some((w) => w.focused && new URL(w.url).hash === `#conversation=${c.id}`)) continue;
    await notifyConversation(self.registration, me, c, messages);
  }
}

/** Opens or focuses the app on the conversation the notification was about. */
export async function onNotificationClick(notification) {
  notification.close();
  const id = notification.data?.conversation ?? null;
  // The app's own windows only: another page of this origin (the widget's, a file) cannot
  // show the chat. Chromium lists the most recently focused first.
  const windows = (await self.clients.matchAll({ type: "window", includeUncontrolled: true })).filter((w) =>
    APP_PAGES.includes(new URL(w.url).pathname),
  );
  const open = windows.find((w) => w.focused) ?? windows.find((w) => new URL(w.url).hash === `#conversation=${id}`) ?? windows[0];
  if (open) {
    await open.focus();
    open.postMessage({ type: "open-conversation", conversation: id });
    return;
  }
  await self.clients.openWindow(id ? `/#conversation=${id}` : "/");
}
