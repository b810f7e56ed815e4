// The service worker: keeps the app shell (www/) and the engine (pkg/) in a cache so the app
// opens without a connection, and swaps versions only when the page asks.
//
// /pkg/precache.js (written at build time by scripts/web-precache.py) lists every file with
// its SHA-256 and a version derived from them. A deployment that changes any file changes that
// script, so the browser installs a new worker, which downloads the files into its own cache
// `qpq-shell-<version>` (checking every hash: a half-updated server fails the install, which
// is retried later) and then waits. Pages keep being served by the old worker from the old
// cache, so no open tab ever misses a file; the page offers "Reload to update", which sends
// "take-over". Only the activated new worker deletes the old caches.
//
// Everything else (/transport.json, /healthz, the WebSocket and WebTransport sessions) goes to
// the network untouched.
//
// It is a module worker (registered with type "module") because a push wakes it to run the
// engine (sw-push.js), which is an ES module.

/* global QPQ_PRECACHE */
import "/pkg/precache.js";
import { onNotificationClick, onPush } from "./sw-push.js";

const PREFIX = "qpq-shell-";
const CACHE = PREFIX + QPQ_PRECACHE.version;
const FILES = QPQ_PRECACHE.files;

self.addEventListener("install", (event) => {
  event.waitUntil(precache());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((names) => Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n)))),
  );
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "take-over") self.skipWaiting();
});

self.addEventListener("push", (event) => {
  event.waitUntil(onPush());
});

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(onNotificationClick(event.notification));
});

self.addEventListener("fetch", (event) => {
  const key = cacheKey(event.request);
  if (key) event.respondWith(fromCache(key, event.request));
});

/** Downloads every listed file into this version's cache, checking each hash. */
async function precache() {
  // A failed install leaves what it stored (the browser retries at its next update check and
  // overwrites it); the next activation deletes it with the other versions' caches.
  const cache = await caches.open(CACHE);
  await Promise.all(
    Object.entries(FILES).map(async ([url, hash]) => {
      const response = await fetch(url, { cache: "no-cache" });
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      const got = await sha256Hex(await response.clone().arrayBuffer());
      if (got !== hash) throw new Error(`${url} is not the listed version (is the server being updated?)`);
      await cache.put(url, response);
    }),
  );
}

/** The precached URL answering `request`, or null to leave it to the network. */
function cacheKey(request) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  if (request.mode === "navigate") return url.pathname === "/" || url.pathname === "/index.html" ? "/" : null;
  return url.pathname !== "/" && Object.hasOwn(FILES, url.pathname) ? url.pathname : null;
}

async function fromCache(key, request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(key)) ?? fetch(request);
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
