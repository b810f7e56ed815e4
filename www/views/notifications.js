// The "Enable notifications" button and the "Hide message text in notifications" choice in
// the top bar. Permission is asked only when the button is pressed. Then the browser
// subscribes to its push service with the server's VAPID key, and the subscription is handed
// to the server, which wakes this browser's service worker (sw-push.js) when messages wait
// and no tab is connected. Each start refreshes the subscription with the server.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { hideContent, setHideContent } from "../notify-settings.js";

/**
 * @param {import("/pkg/qpq_web.js").QpqClient} client
 * @param {HTMLElement} topbar
 * @param {AbortSignal} signal
 */
export function wireNotifications(client, topbar, signal) {
  const button = h("button", { type: "button", class: "secondary small", text: "Enable notifications" });
  const hide = h("input", { type: "checkbox", id: "notify-hide" });
  const status = h("span", { class: "hint", role: "status", "aria-label": "Notification status" });
  topbar.append(
    button,
    h("label", { class: "notify-hide", for: "notify-hide" }, hide, " Hide message text in notifications"),
    status,
  );
  hideContent().then((v) => (hide.checked = v), () => {});
  hide.addEventListener("change", () => setHideContent(hide.checked).catch((e) => setText(status, describeError(e))), { signal });
  button.addEventListener(
    "click",
    async () => {
      button.disabled = true;
      setText(status, "");
      try {
        await enable(client);
        setText(status, "Notifications are on.");
      } catch (e) {
        setText(status, describeError(e));
      } finally {
        button.disabled = false;
      }
    },
    { signal },
  );
  return {
    /** Called when the connection comes up: re-sends an existing subscription. */
    async refresh() {
      if (typeof Notification !== "function" || Notification.permission !== "granted") return;
      const registration = await navigator.serviceWorker?.getRegistration();
      const sub = await registration?.pushManager?.getSubscription();
      if (sub) await register(client, sub).catch(() => {});
    },
  };
}

/** Asks for permission, subscribes and registers the subscription with the server. */
async function enable(client) {
  if (typeof Notification !== "function" || !navigator.serviceWorker || typeof PushManager !== "function") {
    throw new Error("this browser cannot show notifications from a closed app");
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error("notifications are blocked for this site; allow them in the browser's site settings and try again");
  }
  const registration = await navigator.serviceWorker.ready;
  const key = await client.vapidPublicKey();
  let sub = await registration.pushManager.getSubscription();
  if (sub && keyOf(sub) !== key) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) {
    try {
      sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    } catch {
      throw new Error("the browser's push service could not be reached; try again later");
    }
  }
  await register(client, sub);
}

function register(client, sub) {
  const { endpoint, keys } = sub.toJSON();
  return client.setPushSubscription(endpoint, keys.p256dh, keys.auth);
}

/** The application server key a subscription was made with, base64url. */
function keyOf(sub) {
  const key = sub.options?.applicationServerKey;
  if (!key) return null;
  const bytes = new Uint8Array(key);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
