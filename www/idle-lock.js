// Locking the app when a passphrase protects it: **Lock now**, or after the idle time chosen
// under **Lock after** (kept in this browser's localStorage). Locking stops the engine (no
// write in flight) and reloads every tab, which forgets every key: the tab running the engine
// then asks for the passphrase. Idle means idle in every tab: each tab notes the time of the
// person's last key press, click, touch or scroll in localStorage, and a tab whose countdown
// ends while another tab was used since waits again.

const KEY = "qpq.lockAfterMinutes";
/** When the person last did something in any tab (ms since the epoch). */
const ACTIVE_KEY = "qpq.activeAt";
/** Activity is noted at most this often. */
const NOTE_EVERY_MS = 5_000;
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
 * Stops the engine (in whichever tab runs it; every tab reloads) and reloads: the page comes
 * back locked.
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
  let notedAt = 0;
  const lastActive = () => Number(localStorage.getItem(ACTIVE_KEY)) || 0;
  const wait = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const left = lockAfterMinutes() * 60_000 - (Date.now() - lastActive());
      // Used in another tab in the meantime: count from then.
      if (left > 1_000) wait(left);
      else lockNow(client, stopApp);
    }, ms);
  };
  const arm = () => {
    clearTimeout(timer);
    const minutes = lockAfterMinutes();
    if (!minutes || !client.hasPassphrase()) return;
    const now = Date.now();
    if (now - notedAt > NOTE_EVERY_MS) {
      notedAt = now;
      localStorage.setItem(ACTIVE_KEY, String(now));
    }
    wait(minutes * 60_000);
  };
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) {
    window.addEventListener(type, arm, { signal, passive: true });
  }
  window.addEventListener("qpq-lock-settings", arm, { signal });
  signal.addEventListener("abort", () => clearTimeout(timer));
  arm();
}
