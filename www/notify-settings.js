// Notification settings, kept on this device and never told to the server: for each
// conversation "all", "mentions" or "muted" (default "all"), and whether notifications hide
// the message text ("New message" instead). The page writes them; the service worker reads
// them when a push arrives, so they live in IndexedDB (`qpq-notify`), which both can reach.
// Only conversation ids (random group ids) and these choices are stored, nothing of the
// messages.

const DB_NAME = "qpq-notify";
const STORE = "settings";

/** The levels, in the order the select shows them. */
export const LEVELS = [
  { value: "all", label: "All" },
  { value: "mentions", label: "Mentions" },
  { value: "muted", label: "Muted" },
];

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

async function read(key, fallback) {
  const value = await withStore("readonly", (s) => s.get(key));
  return value === undefined ? fallback : value;
}

function write(key, value) {
  return withStore("readwrite", (s) => s.put(value, key));
}

/** @returns {Promise<"all" | "mentions" | "muted">} */
export function conversationLevel(id) {
  return read(`conversation:${id}`, "all");
}

/** @param {"all" | "mentions" | "muted"} level */
export function setConversationLevel(id, level) {
  if (!LEVELS.some((l) => l.value === level)) throw new Error(`unknown notification level ${level}`);
  return write(`conversation:${id}`, level);
}

/** Whether notifications say "New message" instead of the text. */
export function hideContent() {
  return read("hide-content", false);
}

export function setHideContent(hide) {
  return write("hide-content", !!hide);
}

/**
 * Whether a message should notify at `level`: everything, only messages naming `me`
 * (`@name` or `@name@domain`), or nothing.
 */
export function notifies(level, text, me) {
  if (level === "muted") return false;
  if (level === "all") return true;
  const local = me.includes("@") ? me.slice(0, me.indexOf("@")) : me;
  const lower = text.toLowerCase();
  return lower.includes(`@${me.toLowerCase()}`) || new RegExp(`@${escapeRegExp(local.toLowerCase())}(?![\\w.-])`).test(lower);
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Every setting here as a string, for a device being linked to take over (`serveLink`): the
 * level of each conversation that is not "all", and whether notifications hide the text.
 */
export async function exportSettings() {
  const [keys, values] = await Promise.all([
    withStore("readonly", (s) => s.getAllKeys()),
    withStore("readonly", (s) => s.getAll()),
  ]);
  const levels = {};
  let hide = false;
  keys.forEach((key, i) => {
    if (key === "hide-content") hide = values[i] === true;
    else if (typeof key === "string" && key.startsWith("conversation:") && values[i] !== "all") levels[key.slice(13)] = values[i];
  });
  return JSON.stringify({ v: 1, levels, hideContent: hide });
}

/** Takes over settings made by `exportSettings` on another device; anything else is ignored. */
export async function importSettings(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return;
  }
  if (parsed?.v !== 1 || typeof parsed.levels !== "object" || parsed.levels === null) return;
  for (const [id, level] of Object.entries(parsed.levels)) {
    if (/^[0-9a-f]{2,128}$/.test(id) && LEVELS.some((l) => l.value === level)) await setConversationLevel(id, level);
  }
  if (parsed.hideContent === true) await setHideContent(true);
}
