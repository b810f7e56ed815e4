// One engine per browser profile: the context that holds the Web Lock "qpq-engine" runs the
// engine, owns its IndexedDB state and its connection. That is the SharedWorker of the tabs
// where the browser has them (engine-worker.js); elsewhere a tab asks for the lock as it opens
// and waits in line, and while another tab holds it, this one uses that tab's engine
// (engine-session.js). When the holder ends (the worker, once its last tab closed; or the
// leading tab), the browser gives the lock to the next in line at once. The service worker
// takes the lock for a push when nobody holds it, or when no page that could hold it is open
// any more (the holder is on its way out: a worker whose tabs just closed is closing);
// it gives it back once its engine has stopped (sw-push.js).

export const ENGINE_LOCK = "qpq-engine";
/** Held by each tab while it lives, with its id appended (tab-link.js, engine-worker.js). */
export const TAB_LOCK = "qpq-tab-";

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
      .request(ENGINE_LOCK, { ifAvailable: true }, (lock) => {
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
 * Waits in line for the lock for at most `ms`.
 * @param {number} ms
 * @returns {Promise<{ release: () => void } | null>} null when it is still held after `ms`
 */
export function takeEngineLockWithin(ms) {
  return new Promise((resolve, reject) => {
    navigator.locks
      .request(ENGINE_LOCK, { signal: AbortSignal.timeout(ms) }, () => new Promise((release) => resolve({ release: () => release() })))
      .catch((e) => (e?.name === "TimeoutError" || e?.name === "AbortError" ? resolve(null) : reject(e)));
  });
}

/**
 * Waits in line for the lock, then calls `lead`; the lock is held until the page goes away.
 * @param {() => void} lead
 */
export function leadWhenFree(lead) {
  navigator.locks
    .request(ENGINE_LOCK, () => {
      lead();
      return new Promise(() => {});
    })
    .catch((e) => console.error("the engine lock failed", e));
}
