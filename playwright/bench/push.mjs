// Benchmark (not a test): Web Push latency through a real node and gateway and Chromium's
// service worker.
//
//   cd playwright && node bench/push.mjs [rounds]
//
// Needs what scripts/test-browser.sh builds (pkg/, target/debug/qpq-server and qpq-gateway, or
// $QPQ_BIN_DIR). One node (SQLite, `--push-allow-http --push-delay-ms 500`), the gateway, the
// local push service of the tests (support/push-service.js: headless Chromium has no push
// service), Alice in a browser context and Bob in a persistent profile with notifications
// enabled and his tabs closed. Each round Alice sends "ping N"; the node pushes after its
// delay; the push is handed to Bob's service worker with CDP ServiceWorker.deliverPushMessage
// and the round ends when registration.getNotifications() shows "ping N". Rounds alternate:
// warm (the worker is running) and cold (ServiceWorker.stopAllWorkers first, so the worker
// starts, loads the engine from its cache, opens the account and connects). Reported:
//   queued → push sent: Enter pressed on Alice's page → the push service received the POST
//   push → notification: deliverPushMessage sent → the notification is there
//   queued → notification: the sum (what a person waits, the test's own reaction excluded)

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import { startGateway, startServer } from "../support/processes.js";
import { shownNotifications, standInForThePushService, startPushService } from "../support/push-service.js";

const ROUNDS = Number(process.argv[2] ?? 10);
const BASE = "http://127.0.0.1:18080";

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const stats = (xs) => ({ median: pct(xs, 50), p90: pct(xs, 90), min: Math.min(...xs), max: Math.max(...xs) });

async function signUp(page, name) {
  await page.goto(`${BASE}/?transport=websocket`);
  await page.getByRole("textbox", { name: "Username" }).fill(name);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("status", { name: "Connection" }).filter({ hasText: "Online via WebSocket" }).waitFor();
}

const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-bench-push-"));
const node = await startServer({
  name: "node",
  port: 17443,
  dataDir: path.join(dir, "node"),
  logDir: dir,
  args: ["--push-allow-http", "--push-delay-ms", "500"],
});
const gateway = await startGateway({ port: 18080, httpsPort: 18443, nodes: [node], logDir: dir });
const push = await startPushService();
const browser = await chromium.launch({ ...CHROMIUM_LAUNCH, headless: true });
const bobContext = await chromium.launchPersistentContext(path.join(dir, "bob-profile"), { ...CHROMIUM_LAUNCH, headless: true });
try {
  await bobContext.grantPermissions(["notifications"], { origin: BASE });
  const sub = push.subscribe();
  await standInForThePushService(bobContext, sub);
  const alice = await (await browser.newContext()).newPage();
  const bob = bobContext.pages()[0] ?? (await bobContext.newPage());
  await signUp(alice, "alice");
  await signUp(bob, "bob");
  await alice.getByRole("button", { name: "New chat" }).click();
  await alice.getByRole("textbox", { name: "Recipient" }).fill("bob");
  await alice.getByRole("button", { name: "Start chat" }).click();
  const composer = alice.getByRole("textbox", { name: "Message", exact: true });
  await composer.fill("hello");
  await composer.press("Enter");
  await bob.getByRole("list", { name: "Conversations" }).getByRole("button", { name: /^alice@localhost/ }).click();
  await bob.getByRole("log", { name: "Messages" }).getByText("hello").waitFor();
  await bob.getByRole("button", { name: "Enable notifications" }).click();
  await bob.getByRole("status", { name: "Notification status" }).filter({ hasText: "Notifications are on." }).waitFor();
  await bob.waitForFunction(async () => (await navigator.serviceWorker.getRegistration())?.active?.state === "activated");
  const helper = await bobContext.newPage();
  await helper.goto(`${BASE}/manifest.webmanifest`);
  await bob.close();
  const cdp = await bobContext.newCDPSession(helper);
  const registrations = [];
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => registrations.push(...e.registrations));
  await cdp.send("ServiceWorker.enable");
  while (!registrations.some((r) => !r.isDeleted)) await new Promise((r) => setTimeout(r, 20));
  const { registrationId } = registrations.find((r) => !r.isDeleted);

  const rows = { warm: { sent: [], shown: [], total: [] }, cold: { sent: [], shown: [], total: [] } };
  for (let i = 0; i <= ROUNDS; i++) {
    const kind = i % 2 === 0 ? "cold" : "warm";
    const before = push.received.length;
    await composer.fill(`ping ${i}`);
    const t0 = Date.now();
    await composer.press("Enter");
    while (push.received.length === before) await new Promise((r) => setTimeout(r, 5));
    const t1 = push.received[before].at;
    if (kind === "cold") await cdp.send("ServiceWorker.stopAllWorkers");
    const t2 = Date.now();
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: BASE, registrationId, data: "wake" });
    for (;;) {
      const shown = await shownNotifications(helper);
      if (shown.some((n) => n.body === `ping ${i}`)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const t3 = Date.now();
    await helper.evaluate(async () => {
      for (const n of await (await navigator.serviceWorker.getRegistration("/")).getNotifications()) n.close();
    });
    if (i === 0) continue; // warm-up: the first worker start also compiles the engine
    rows[kind].sent.push(t1 - t0);
    rows[kind].shown.push(t3 - t2);
    rows[kind].total.push(t1 - t0 + (t3 - t2));
  }
  const f = (s) => `${s.median} | ${s.p90} | ${s.min} | ${s.max}`;
  console.log(`\n${ROUNDS} rounds after 1 warm-up (alternating cold and warm), node --push-delay-ms 500, binaries from ${process.env.QPQ_BIN_DIR ?? "target/debug"}, Chromium ${browser.version()} headless\n`);
  console.log("| worker | step | median (ms) | p90 (ms) | min (ms) | max (ms) |");
  console.log("|---|---|---|---|---|---|");
  for (const kind of ["warm", "cold"]) {
    const r = rows[kind];
    console.log(`| ${kind} | queued → push sent | ${f(stats(r.sent))} |`);
    console.log(`| ${kind} | push → notification shown | ${f(stats(r.shown))} |`);
    console.log(`| ${kind} | queued → notification shown | ${f(stats(r.total))} |`);
  }
} finally {
  await bobContext.close();
  await browser.close();
  await push.close();
  await gateway.stop();
  await node.stop("SIGINT");
  await rm(dir, { recursive: true, force: true });
}
