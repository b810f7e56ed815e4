// Locking the app when a passphrase protects it: **Lock now**, or after the idle time chosen
// under **Lock after** (kept in this browser's localStorage). Locking stops the engine (no
// write in flight) and reloads the page, which forgets every key: the page then asks for the
// passphrase.

const KEY = "qpq.lockAfterMinutes";
/** The choices of **Lock after**, in minutes (0: never). */
export const LOCK_AFTER = [0, 1, 5, 15, 60];

/** The chosen idle time in minutes (0: never). */
export function lockAfterMinutes() {
  const v = Number(localStorage.getItem(KEY) ?? 15);
  return LOCK_AFTER.includes(v) ? v : 15;
}

/** Saves the idle time and restarts the countdown. */
export function setLockAfterMinutes(minutes) {
  localStorage.setItem(KEY, String(minutes));
  window.dispatchEvent(new Event("qpq-lock-settings"));
}

/**
 * Stops the engine and reloads: the page comes back locked.
 * @param {import("/pkg/qpq_web.js").QpqClient} client
 * @param {() => void} stopApp stops the app's views first
 */
export async function lockNow(client, stopApp) {
  stopApp();
  await client.stop();
  location.reload();
}

/**
 * Locks after the chosen time without a key press, click, touch or scroll in this page, while
 * a passphrase is set.
 * @param {import("/pkg/qpq_web.js").QpqClient} client
 * @param {() => void} stopApp
 * @param {AbortSignal} signal
 */
export function wireIdleLock(client, stopApp, signal) {
  let timer = null;
  const arm = () => {
    clearTimeout(timer);
    const minutes = lockAfterMinutes();
    if (!minutes || !client.hasPassphrase()) return;
    timer = setTimeout(() => lockNow(client, stopApp), minutes * 60_000);
  };
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) {
    window.addEventListener(type, arm, { signal, passive: true });
  }
  window.addEventListener("qpq-lock-settings", arm, { signal });
  signal.addEventListener("abort", () => clearTimeout(timer));
  arm();
}
