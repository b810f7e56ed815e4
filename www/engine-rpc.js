// What crosses between a tab and the tab that runs the engine (engine-hub.js and
// engine-handle.js): the names of the engine's methods, sorted by how they can be forwarded,
// and the marshalling of what structured cloning cannot carry. A function (a progress
// callback) becomes a token the engine's side calls back through the port; an AbortSignal
// becomes a token whose abort is forwarded; an object with methods (the file-store's download
// sink) becomes a record of such functions. Errors travel as their message and code.

/**
 * Methods of QpqClient that answer at once. A tab without the engine answers them from a
 * copy that the engine's tab keeps up to date (the key of each copy: the method and its
 * arguments); `historySince` and `message` are read from the copy of `history`.
 */
export const SYNC_METHODS = [
  "user",
  "deviceId",
  "hasPassphrase",
  "connectionState",
  "conversations",
  "conversation",
  "history",
  "historySince",
  "message",
  "typing",
  "contacts",
  "exportContacts",
  "blockedUsers",
  "hasFile",
  "profile",
  "profileOf",
  "profilePicture",
  "profileCard",
];

/** Methods that return promises: forwarded as they are. */
export const ASYNC_METHODS = [
  "setPassphrase",
  "removePassphrase",
  "startChat",
  "createGroup",
  "addMembers",
  "removeMembers",
  "safetyNumber",
  "markVerified",
  "clearVerified",
  "sendText",
  "sendReply",
  "react",
  "editMessage",
  "deleteMessage",
  "setTyping",
  "setDisappearing",
  "setAdmin",
  "leaveConversation",
  "markRead",
  "deleteAccount",
  "backup",
  "iceServers",
  "sendCallSignal",
  "callRangOut",
  "openLink",
  "serveLink",
  "cancelLink",
  "devices",
  "signOut",
  "revokeDevice",
  "sendFile",
  "downloadFile",
  "addContact",
  "removeContact",
  "importContacts",
  "block",
  "unblock",
  "acceptRequest",
  "deleteRequest",
  "setProfile",
  "shareProfileCard",
  "vapidPublicKey",
  "setPushSubscription",
  "removePushSubscription",
  // Synchronous on QpqClient, but only ever awaited by the page (file-store.js): asking the
  // engine's tab is fine.
  "openDownload",
  // Stops the engine: every tab starts again (idle-lock.js locks this way).
  "stop",
];

/**
 * Calls that only read, or that do the same when done twice: when the engine's tab closes
 * while one is under way, it is asked again of the next one.
 */
export const RETRYABLE = new Set([
  "safetyNumber",
  "iceServers",
  "devices",
  "vapidPublicKey",
  "openDownload",
  "downloadFile",
  "setTyping",
  "markRead",
  "cancelLink",
  "setPushSubscription",
]);

/** Calls after which the account is gone from this browser or closed: every tab starts again. */
export const ENDING = new Set(["signOut", "deleteAccount", "stop"]);

/** The key of a synchronous read's copy. */
export const readKey = (method, args) => JSON.stringify([method, ...args]);

/** An error as plain data. */
export function errorData(e) {
  if (e instanceof Error || (typeof e === "object" && e !== null && "message" in e)) {
    return { message: String(e.message), code: e.code };
  }
  return { message: String(e ?? "") };
}

/** An Error again, with its code. */
export function toError(data) {
  const e = new Error(data?.message ?? "Something went wrong.");
  if (data?.code !== undefined) e.code = data.code;
  return e;
}

/**
 * Replaces what structured cloning cannot carry in `args`.
 * @param {unknown[]} args
 * @param {(fn: Function) => number} addFunction keeps a function, returns its token
 * @param {(signal: AbortSignal) => number} addSignal keeps a signal, returns its token
 */
export function marshal(args, addFunction, addSignal) {
  const walk = (v, depth) => {
    if (typeof v === "function") return { $fn: addFunction(v) };
    if (typeof v !== "object" || v === null || depth > 4) return v;
    if (typeof AbortSignal === "function" && v instanceof AbortSignal) {
      return { $signal: addSignal(v), aborted: v.aborted };
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1)]));
    }
    if (!hasMethods(proto)) return v;
    // An instance of a class of ours (a download sink): its data and its methods.
    const record = { ...v };
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name !== "constructor" && typeof v[name] === "function") record[name] = v[name].bind(v);
    }
    return { $obj: walk(record, depth + 1) };
  };
  return args.map((a) => walk(a, 0));
}

/** Whether a prototype is a plain class of the page's (not Blob, Uint8Array, File…). */
function hasMethods(proto) {
  const ctor = proto.constructor;
  if (typeof ctor !== "function") return false;
  // Built-in classes are native code; they are cloned (or refused) by the browser.
  return !/\{\s*\[native code\]\s*\}/.test(Function.prototype.toString.call(ctor));
}

/**
 * Turns tokens back into callable stubs on the engine's side.
 * @param {unknown[]} args
 * @param {(token: number) => Function} stubFunction
 * @param {(token: number, aborted: boolean) => AbortSignal} stubSignal
 */
export function unmarshal(args, stubFunction, stubSignal) {
  const walk = (v) => {
    if (typeof v !== "object" || v === null) return v;
    if (Array.isArray(v)) return v.map(walk);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
    if (typeof Blob === "function" && v instanceof Blob) return v;
    if (typeof v.$fn === "number") return stubFunction(v.$fn);
    if (typeof v.$signal === "number") return stubSignal(v.$signal, !!v.aborted);
    if (v.$obj) return walk(v.$obj);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
  };
  return args.map(walk);
}
