// A local RFC 8030 push service for the browser tests — the browser vendor's part of Web
// Push, the one thing the tests stand in for (headless Chromium has no push service to
// subscribe with). It hands out subscriptions (a P-256 key pair and an auth secret, as
// PushManager.subscribe would make), receives the node's POSTs and checks each: TTL and
// Urgency (RFC 8030 §5.2–5.3), the VAPID token (RFC 8292: ES256 over the key `k`, `aud` this
// service's origin, `exp` within 24 hours, a mailto:/https: `sub`), and the aes128gcm body
// (RFC 8291, RFC 8188), which it decrypts with the subscription's private key.

import crypto from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { chromium, expect } from "@playwright/test";
import { CHROMIUM_LAUNCH } from "./chromium.js";
import { watchForPageProblems } from "./stack.js";

const b64u = (buf) => Buffer.from(buf).toString("base64url");

/** Starts the service on a free port of 127.0.0.1. */
export async function startPushService() {
  const subscriptions = new Map();
  const received = [];
  const refused = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const id = req.url.startsWith("/push/") ? req.url.slice("/push/".length) : null;
      const sub = id && subscriptions.get(id);
      if (req.method !== "POST" || !sub) {
        res.writeHead(404).end();
        return;
      }
      try {
        const push = check(req.headers, Buffer.concat(chunks), sub, origin);
        received.push({ id, ...push, at: Date.now() });
        res.writeHead(201).end();
      } catch (e) {
        refused.push(String(e.message));
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    received,
    refused,
    /** A new subscription as `PushSubscription.toJSON()` gives it, plus its id. */
    subscribe() {
      const ecdh = crypto.createECDH("prime256v1");
      ecdh.generateKeys();
      const auth = crypto.randomBytes(16);
      const id = crypto.randomBytes(12).toString("hex");
      subscriptions.set(id, { ecdh, auth });
      return { id, endpoint: `${origin}/push/${id}`, keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) } };
    },
    /** Waits for `n` pushes to `id`. */
    async waitFor(id, n, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (refused.length) throw new Error(`the push service refused requests: ${refused.join("; ")}`);
        const got = received.filter((p) => p.id === id);
        if (got.length >= n) return got;
        if (Date.now() > deadline) throw new Error(`${n} push(es) expected, got ${got.length}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function check(headers, body, sub, origin) {
  const ttl = Number(headers["ttl"]);
  if (!Number.isInteger(ttl) || ttl < 0) throw new Error("TTL missing or not a number");
  const urgency = headers["urgency"];
  if (!["very-low", "low", "normal", "high"].includes(urgency)) throw new Error(`Urgency ${urgency} is not RFC 8030's`);
  if (headers["content-encoding"] !== "aes128gcm") throw new Error("Content-Encoding is not aes128gcm");
  const vapid = checkVapid(headers["authorization"] ?? "", origin);
  return { ttl, urgency, ...vapid, plaintext: decrypt(body, sub).toString("utf8"), bodyLength: body.length };
}

function checkVapid(authorization, origin) {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization);
  if (!m) throw new Error("Authorization is not `vapid t=…, k=…`");
  const [, token, k] = m;
  const point = Buffer.from(k, "base64url");
  if (point.length !== 65 || point[0] !== 4) throw new Error("k is not an uncompressed P-256 point");
  const key = crypto.createPublicKey({
    key: { kty: "EC", crv: "P-256", x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) },
    format: "jwk",
  });
  const [h, c, s] = token.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  const claims = JSON.parse(Buffer.from(c, "base64url"));
  if (header.alg !== "ES256") throw new Error("alg is not ES256");
  const ok = crypto.verify("sha256", Buffer.from(`${h}.${c}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
  if (!ok) throw new Error("the VAPID signature does not verify");
  if (claims.aud !== origin) throw new Error(`aud ${claims.aud} is not ${origin}`);
  const now = Math.floor(Date.now() / 1000);
  if (!(claims.exp > now && claims.exp <= now + 24 * 3600)) throw new Error("exp is not within 24 hours");
  if (!/^(mailto:|https:\/\/)/.test(claims.sub ?? "")) throw new Error("sub is not a mailto: or https: contact");
  return { vapidKey: k, contact: claims.sub };
}

/** The user agent's side of RFC 8291 §3.4 / RFC 8188 §2, one record. */
function decrypt(body, { ecdh, auth }) {
  const salt = body.subarray(0, 16);
  const idlen = body[20];
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  const shared = ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), ecdh.getPublicKey(), asPublic]);
  const ikm = Buffer.from(crypto.hkdfSync("sha256", shared, auth, keyInfo, 32));
  const cek = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = crypto.createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  if (padded[end - 1] !== 2) throw new Error("the record does not end with the last-record delimiter");
  return padded.subarray(0, end - 1);
}

/**
 * Makes PushManager.subscribe (and getSubscription) in the pages of `context` answer with
 * `sub`, a subscription of the local service: headless Chromium has no push service.
 */
export async function standInForThePushService(context, sub) {
  await context.addInitScript((s) => {
    const decode = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;
    let current = null;
    const make = (applicationServerKey) => ({
      endpoint: s.endpoint,
      options: { userVisibleOnly: true, applicationServerKey },
      expirationTime: null,
      getKey: (name) => decode(s.keys[name]),
      toJSON: () => ({ endpoint: s.endpoint, expirationTime: null, keys: s.keys }),
      unsubscribe: async () => ((current = null), true),
    });
    PushManager.prototype.subscribe = async function (options) {
      const key = options.applicationServerKey;
      current = make(typeof key === "string" ? decode(key) : key);
      return current;
    };
    PushManager.prototype.getSubscription = async function () {
      return current;
    };
  }, sub);
}

/**
 * A browser that can receive pushes: a persistent profile (under a temporary directory named
 * from `prefix`; the caller removes `profile`) allowed to notify on the stack's origin, whose
 * PushManager answers with a subscription of the local push service `push`, watched for page
 * problems, with `url` open. `launch` replaces the Chromium options (e.g. fake media devices);
 * `prepare(context)` runs before the page opens (init scripts).
 */
export async function pushableBrowser(stack, push, { prefix, url, launch = CHROMIUM_LAUNCH, prepare }) {
  const profile = await mkdtemp(path.join(os.tmpdir(), prefix));
  const context = await chromium.launchPersistentContext(profile, { ...launch, headless: true });
  const problems = [];
  watchForPageProblems(context, problems);
  await context.grantPermissions(["notifications"], { origin: stack.url });
  const sub = push.subscribe();
  await standInForThePushService(context, sub);
  if (prepare) await prepare(context);
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  return { profile, context, sub, problems, page };
}

/** The notifications the app's service worker shows, read from `page` (of the app's origin). */
export function shownNotifications(page) {
  return page.evaluate(async () => {
    const registration = await navigator.serviceWorker.getRegistration("/");
    const shown = (await registration?.getNotifications()) ?? [];
    return shown.map((n) => ({ title: n.title, body: n.body, conversation: n.data?.conversation }));
  });
}

/**
 * Closes Bob's app tab, keeping one page of the app's origin that is not the app (the
 * manifest), from which the test speaks CDP and reads the worker's notifications. Returns it
 * and `deliver(data)`, which hands a push to the app's service worker.
 */
export async function closeTheApp(stack, context, page) {
  const helper = await context.newPage();
  await helper.goto(`${stack.url}/manifest.webmanifest`);
  await page.close();
  const cdp = await context.newCDPSession(helper);
  const registrations = [];
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => registrations.push(...e.registrations));
  await cdp.send("ServiceWorker.enable");
  const live = () => registrations.filter((r) => !r.isDeleted && r.scopeURL === `${stack.url}/`);
  const deliver = async (data) => {
    await expect.poll(() => live().length).toBeGreaterThan(0);
    const registrationId = live()[0].registrationId;
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: stack.url, registrationId, data });
  };
  return { helper, deliver };
}
