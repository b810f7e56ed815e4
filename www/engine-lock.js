// One engine per browser profile: the context that holds the Web Lock "qpq-engine" runs the
// engine, owns its IndexedDB state and its connection. A tab asks for the lock as it opens
// and waits in line; while another tab holds it, this one uses that tab's engine
// (engine-session.js). When the holder closes or reloads, the browser gives the lock to the
// next tab in line at once. The service worker takes the lock for a push only when no tab
// holds it (sw-push.js), and gives it back once its engine has stopped.

const LOCK_NAME = "qpq-engine";

/** Whether this browser can coordinate tabs at all. */
export function locksSupported() {
  return typeof navigator !== "undefined" && !!navigator.locks;
}

/**
 * Takes the lock if nobody holds it or waits for it.
 * @returns {Promise<{ release: () => void } | null>} null when a tab holds it
 */
export function tryTakeEngineLock() {
  return new Promise((resolve, reject) => {
    navigator.locks
      .request(LOCK_NAME, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        // Held until released.
        return new Promise((release) => resolve({ release: () => release() }));
      })
      .catch(reject);
  });
}

/**
 * Waits in line for the lock, then calls `lead`; the lock is held until the page goes away.
 * @param {() => void} lead
 */
export function leadWhenFree(lead) {
  navigator.locks
    .request(LOCK_NAME, () => {
      lead();
      return new Promise(() => {});
    })
    .catch((e) => console.error("the engine lock failed", e));
}
