// One engine per browser profile. The tab that holds the Web Lock "qpq-engine" owns the
// engine, its IndexedDB state and its connection; another tab shows that quicproquo is open
// elsewhere and can take over. Taking over asks the holder (over a BroadcastChannel) to stop
// its engine and release the lock, so no write of the old tab can follow the new tab's
// reads; only a holder that does not answer within a few seconds has the lock stolen.

const LOCK_NAME = "qpq-engine";
const ASK_TIMEOUT_MS = 5000;
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(LOCK_NAME) : null;

/**
 * A held lock. `asked` resolves when another tab asks for it (stop the engine, then
 * `release()`); `lost` resolves when another tab stole it.
 * @typedef {{ asked: Promise<void>, lost: Promise<void>, release: () => void }} EngineLock
 */

/** Whether this browser can coordinate tabs at all. */
export function locksSupported() {
  return typeof navigator !== "undefined" && !!navigator.locks;
}

/**
 * Takes the lock if no other tab holds it.
 * @returns {Promise<EngineLock | null>} null when another tab holds it
 */
export function tryTakeEngineLock() {
  return request({ ifAvailable: true });
}

/**
 * Takes the lock from whichever tab holds it: asks that tab to stop and release it, and
 * steals it only if the tab does not answer in time.
 * @returns {Promise<EngineLock>}
 */
export async function takeOverEngineLock() {
  if (channel) {
    channel.postMessage("release");
    const patience = new AbortController();
    const timer = setTimeout(() => patience.abort(), ASK_TIMEOUT_MS);
    try {
      return await request({ signal: patience.signal });
    } catch {
      // The holder did not answer: take the lock by force.
    } finally {
      clearTimeout(timer);
    }
  }
  return request({ steal: true });
}

/**
 * Waits until the lock is free (the other tab closed) and takes it.
 * @param {AbortSignal} signal gives up waiting
 * @returns {Promise<EngineLock>}
 */
export function waitForEngineLock(signal) {
  return request({ signal });
}

function request(options) {
  return new Promise((resolve, reject) => {
    let granted = false;
    let release;
    let markLost;
    const held = new Promise((r) => (release = r));
    const lost = new Promise((r) => (markLost = r));
    navigator.locks
      .request(LOCK_NAME, options, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        granted = true;
        const asked = new Promise((r) => {
          channel?.addEventListener("message", (e) => e.data === "release" && r());
        });
        resolve({ asked, lost, release: () => release() });
        // Held until released or stolen.
        return held;
      })
      .catch((error) => {
        // A stolen lock's request rejects with AbortError after it was granted.
        if (granted) markLost();
        else reject(error);
      });
  });
}
