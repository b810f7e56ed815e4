// Benchmark (not a test): the embeddable widget against the full app, in the same run.
//
//   cd playwright && node bench/widget.mjs [rounds]
//
// Needs what scripts/test-browser.sh builds. One node (SQLite) and the gateway with
// --frame-ancestors naming a host page served here on another site (localhost:PORT, the
// gateway being 127.0.0.1:PORT); Bob is signed in to the full app and stays online. Each
// round starts two fresh browser profiles (cold caches, no account; third-party site data
// allowed, see support/chromium.js), one for a visitor of the host page and one for a person
// opening the full app, and times what each sees:
//   first paint     widget: host page navigation → the Open chat button painted (in the host
//                   page's clock, the animation frame after the button exists), beside the
//                   host page's own first contentful paint; app: navigation → first
//                   contentful paint (the loading screen) and → the sign-up form painted
//                   (the engine loaded).
//   ready           widget: click on Open chat → sign-up form painted in the iframe (the engine
//                   downloaded and started only now); both: click on Create account → the
//                   chat with Bob ready to write in (widget: it starts by itself; app: New chat,
//                   bob, Start chat, done by Playwright).
//   first message   click on Send (Enter) → the node has the message (its status is sent).
//                   A first message to someone is a message request, which their device does
//                   not acknowledge until they accept it, so "delivered" cannot be waited for.
//   total           widget: click on Open chat → first message on the node; app: navigation
//                   → first message on the node. Both include Playwright typing the name.
//   returning       the same profile again (page reloaded): widget click on Open chat → chat
//                   ready; app navigation → conversation list shown.
// Reported as median, min and max over the rounds, in ms.

import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_LAUNCH, profileAllowingThirdPartyStorage } from "../support/chromium.js";
import { startGateway, startServer } from "../support/processes.js";

const ROUNDS = Number(process.argv[2] ?? 5);
// The test ports, which QPQ_TEST_* move as they move the tests' (to run beside another run).
const PORT = Number(process.env.QPQ_TEST_GATEWAY_PORT ?? 18080);
const HTTPS_PORT = Number(process.env.QPQ_TEST_GATEWAY_HTTPS_PORT ?? 18443);
const NODE_PORT = Number((process.env.QPQ_TEST_NODE_PORTS ?? "17443").split(",")[0]);
const BASE = `http://127.0.0.1:${PORT}`;
const HOST_PORT = PORT + 30;
const HOST = `http://localhost:${HOST_PORT}`;
const PEER = "bobw@localhost";

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const stats = (xs) => ({ median: Math.round(pct(xs, 50)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)) });

/** In every page: when the Open chat button (in <qpq-chat>'s shadow root) was first painted. */
function watchForButton() {
  if (window !== window.top) return;
  const look = () => {
    if (document.querySelector("qpq-chat")?.shadowRoot?.querySelector("button")) {
      // The frame that draws it: the next animation frame starts after that paint.
      requestAnimationFrame(() => (window.__buttonPaintedAt = performance.now()));
    } else {
      requestAnimationFrame(look);
    }
  };
  requestAnimationFrame(look);
}

/** The page's first contentful paint, in its clock. */
const firstContentfulPaint = (page) =>
  page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN);

/** Waits for `locator`, then for a painted frame; returns performance.now() of `page` then. */
async function paintedAt(page, locator) {
  await locator.waitFor();
  return page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now())))));
}

/** Milliseconds `action` takes, by this process's clock. */
async function timed(action) {
  const t0 = performance.now();
  await action();
  return performance.now() - t0;
}

/** The outgoing message `text` once the node has it (sent, or delivered already). */
const onTheNode = (scope, text) =>
  scope.locator(".msg.outgoing:is([data-status=sent], [data-status=delivered])").filter({ hasText: text });

async function hostServer() {
  const page = `<!doctype html><html lang="en"><meta charset="utf-8"><title>A shop</title>
<h1>A shop</h1><p>Questions? Ask us.</p>
<script src="${BASE}/embed.js" data-peer="${PEER}" async></script></html>`;
  const server = http.createServer((req, res) => res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page));
  await new Promise((resolve, reject) => server.once("error", reject).listen(HOST_PORT, "127.0.0.1", resolve));
  return server;
}

async function profile() {
  const dir = await profileAllowingThirdPartyStorage();
  const context = await chromium.launchPersistentContext(dir, { ...CHROMIUM_LAUNCH, headless: true });
  return {
    context,
    async close() {
      await context.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function widgetRound(i, t) {
  const p = await profile();
  try {
    await p.context.addInitScript(watchForButton);
    const page = await p.context.newPage();
    await page.goto(`${HOST}/`);
    const open = page.getByRole("button", { name: "Open chat" });
    await open.waitFor();
    await page.waitForFunction(() => window.__buttonPaintedAt);
    t.paint.push(await page.evaluate(() => window.__buttonPaintedAt));
    t.hostFcp.push(await firstContentfulPaint(page));
    const frame = page.locator("qpq-chat iframe").contentFrame();
    const clickAt = performance.now();
    await open.click();
    const name = frame.getByRole("textbox", { name: "Username" });
    await name.waitFor();
    t.engine.push(performance.now() - clickAt);
    await name.fill(`visitor${i}`);
    const composer = frame.getByRole("textbox", { name: "Message", exact: true });
    t.ready.push(
      await timed(async () => {
        await frame.getByRole("button", { name: "Create account" }).click();
        await frame.locator("#composer-input:enabled").waitFor();
      }),
    );
    const text = `Hello from visitor ${i}`;
    await composer.fill(text);
    t.message.push(
      await timed(async () => {
        await composer.press("Enter");
        await onTheNode(frame, text).waitFor({ timeout: 30_000 });
      }),
    );
    t.total.push(performance.now() - clickAt);
    // Returning: the page again, the chat opened from storage.
    await page.reload();
    await open.waitFor();
    t.returning.push(
      await timed(async () => {
        await open.click();
        await frame.locator("#composer-input:enabled").waitFor();
        await frame.getByText(text).waitFor();
      }),
    );
  } finally {
    await p.close();
  }
}

async function appRound(i, t) {
  const p = await profile();
  try {
    const page = await p.context.newPage();
    const t0 = performance.now();
    await page.goto(`${BASE}/`);
    t.fcp.push(await firstContentfulPaint(page));
    const name = page.getByRole("textbox", { name: "Username" });
    t.paint.push(await paintedAt(page, name));
    await name.fill(`person${i}`);
    t.ready.push(
      await timed(async () => {
        await page.getByRole("button", { name: "Create account" }).click();
        await page.getByRole("button", { name: "New chat" }).click();
        await page.getByRole("textbox", { name: "Recipient" }).fill(PEER);
        await page.getByRole("button", { name: "Start chat" }).click();
        await page.getByRole("heading", { level: 2, name: PEER }).waitFor();
        await page.locator("#composer-input:enabled").waitFor();
      }),
    );
    const composer = page.getByRole("textbox", { name: "Message", exact: true });
    const text = `Hello from person ${i}`;
    await composer.fill(text);
    t.message.push(
      await timed(async () => {
        await composer.press("Enter");
        await onTheNode(page, text).waitFor({ timeout: 30_000 });
      }),
    );
    t.total.push(performance.now() - t0);
    t.returning.push(
      await timed(async () => {
        await page.reload();
        await page.getByRole("list", { name: "Conversations" }).getByRole("button").first().waitFor();
      }),
    );
  } finally {
    await p.close();
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-bench-widget-"));
const node = await startServer({ name: "node", port: NODE_PORT, dataDir: path.join(dir, "node"), logDir: dir });
const gateway = await startGateway({ port: PORT, httpsPort: HTTPS_PORT, nodes: [node], logDir: dir, args: ["--frame-ancestors", HOST] });
const server = await hostServer();
const browser = await chromium.launch({ ...CHROMIUM_LAUNCH, headless: true });
try {
  // Bob, online in the full app for the whole run.
  const bob = await (await browser.newContext()).newPage();
  await bob.goto(`${BASE}/`);
  await bob.getByRole("textbox", { name: "Username" }).fill("bobw");
  await bob.getByRole("button", { name: "Create account" }).click();
  await bob.getByRole("status", { name: "Connection" }).filter({ hasText: "Online via" }).waitFor();

  const w = { paint: [], hostFcp: [], engine: [], ready: [], message: [], total: [], returning: [] };
  const a = { fcp: [], paint: [], ready: [], message: [], total: [], returning: [] };
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which goes first, so neither always meets a warmer machine.
    if (i % 2 === 0) {
      await widgetRound(i, w);
      await appRound(i, a);
    } else {
      await appRound(i, a);
      await widgetRound(i, w);
    }
    console.error(
      `round ${i + 1}: widget button ${Math.round(w.paint.at(-1))} ms, open→form ${Math.round(w.engine.at(-1))} ms, ` +
        `total ${Math.round(w.total.at(-1))} ms; app form ${Math.round(a.paint.at(-1))} ms, total ${Math.round(a.total.at(-1))} ms`,
    );
  }
  console.log(`Widget vs full app, ms over ${ROUNDS} fresh profiles each (median, min, max):`);
  console.log(`  first paint   widget: host page FCP      ${JSON.stringify(stats(w.hostFcp))}`);
  console.log(`                widget: Open chat painted  ${JSON.stringify(stats(w.paint))}  (no engine fetched)`);
  console.log(`                app:    FCP (loading)      ${JSON.stringify(stats(a.fcp))}`);
  console.log(`                app:    sign-up painted    ${JSON.stringify(stats(a.paint))}  (engine loaded)`);
  console.log(`  open → sign-up form (engine loaded)      ${JSON.stringify(stats(w.engine))}`);
  console.log(`  account → chat ready   widget            ${JSON.stringify(stats(w.ready))}`);
  console.log(`                         app               ${JSON.stringify(stats(a.ready))}  (with New chat)`);
  console.log(`  send → on the node     widget            ${JSON.stringify(stats(w.message))}`);
  console.log(`                         app               ${JSON.stringify(stats(a.message))}`);
  console.log(`  total to first message widget (from Open chat)  ${JSON.stringify(stats(w.total))}`);
  console.log(`                         app (from navigation)    ${JSON.stringify(stats(a.total))}`);
  console.log(`  returning visitor      widget open → chat ready ${JSON.stringify(stats(w.returning))}`);
  console.log(`                         app reload → list shown  ${JSON.stringify(stats(a.returning))}`);
} finally {
  await browser.close();
  server.close();
  await gateway.stop();
  await node.stop("SIGINT");
  await rm(dir, { recursive: true, force: true });
}
