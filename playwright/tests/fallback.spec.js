// The fallback: when WebTransport is missing or fails, a person is online over WebSocket
// quickly and without doing anything, and chats as usual. Every case measures the time from
// page load, and from pressing "Create account", to "Online via WebSocket", and compares it
// with a person in the same test whose page is forced onto WebSocket (`?transport=websocket`):
// the difference is what the fallback costs, which must stay within the bound the client
// states (WebTransport gets WT_TIMEOUT_MS = 2000 ms, web-client/src/transport/auto.rs).

import dgram from "node:dgram";
import { withoutSharedWorker } from "../support/engine-worker.js";
import { test, expect, appUrlFor } from "../support/stack.js";
import { DELIVERED, connection, createAccount, expectChat, expectOnline, openConversation, ownMessage, send, startChat } from "../support/app.js";

/** The client's WebTransport time bound (web-client/src/transport/auto.rs). */
const WT_TIMEOUT_MS = 2000;
/** What else may differ between two people signing up one after the other. */
const JITTER_MS = 1500;
/** A UDP port for a WebTransport URL that nothing answers. */
const DEAD_UDP_PORT = 18453;

/** Records, in the page, when "Create account" was pressed and when it first went online. */
const TIMING = () => {
  window.__qpqTimes = {};
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("connection");
    new MutationObserver(() => {
      if (!window.__qpqTimes.online && el.textContent.startsWith("Online via")) {
        window.__qpqTimes.online = performance.now();
        window.__qpqTimes.via = el.textContent;
      }
    }).observe(el, { childList: true, characterData: true, subtree: true });
    document.getElementById("signup-form").addEventListener("submit", () => {
      window.__qpqTimes.submit ??= performance.now();
    });
  });
};

/** Load→online and submit→online of a page, in ms. */
async function times(page) {
  const t = await page.evaluate(() => window.__qpqTimes);
  return { loadToOnline: Math.round(t.online), submitToOnline: Math.round(t.online - (t.submit ?? 0)), via: t.via };
}

/**
 * Signs up `name` (whose page falls back) and `baselineName` (forced onto WebSocket), checks
 * both are on WebSocket, that the fallback cost stays within `budgetMs`, and that they chat.
 */
async function fallBackAndChat(newPerson, { name, prepare, budgetMs, what }, testInfo) {
  const person = await newPerson({}, { url: appUrlFor("auto"), prepare: async (c) => { await c.addInitScript(TIMING); await prepare?.(c); } });
  await createAccount(person, name, { transport: "WebSocket" });
  const fell = await times(person);
  const baseline = await newPerson({}, { url: appUrlFor("websocket"), prepare: (c) => c.addInitScript(TIMING) });
  await createAccount(baseline, "base");
  const base = await times(baseline);
  const cost = { load: fell.loadToOnline - base.loadToOnline, submit: fell.submitToOnline - base.submitToOnline };
  const line = `${what}: page load → "${fell.via}" ${fell.loadToOnline} ms, Create account → online ${fell.submitToOnline} ms; forced WebSocket: ${base.loadToOnline} ms / ${base.submitToOnline} ms; fallback cost ≈ ${cost.submit} ms (budget ${budgetMs} ms)`;
  console.log(line);
  testInfo.annotations.push({ type: "fallback", description: line });
  expect(fell.via).toBe("Online via WebSocket");
  expect(cost.submit, line).toBeLessThanOrEqual(budgetMs);
  expect(fell.loadToOnline - base.loadToOnline, line).toBeLessThanOrEqual(budgetMs + JITTER_MS);

  // They chat.
  await startChat(person, "base");
  await send(person, `hello over the fallback from ${name}`);
  await openConversation(baseline, `${name}@localhost`);
  await expectChat(baseline, [`hello over the fallback from ${name}`]);
  await send(baseline, "received");
  await expectChat(person, [`hello over the fallback from ${name}`, "received"]);
  return { person, baseline, fell, cost };
}

test.describe("UDP silently dropped", () => {
  test.use({ gatewayArgs: ["--webtransport-url", `https://127.0.0.1:${DEAD_UDP_PORT}/wt`] });

  test("a new user is on WebSocket within the bound, chats, and a reload does not wait again", async ({ stack, newPerson }, testInfo) => {
    // A socket that takes every datagram and answers none: the QUIC handshake never ends.
    const blackhole = dgram.createSocket("udp4");
    await new Promise((resolve, reject) => blackhole.once("error", reject).bind(DEAD_UDP_PORT, "127.0.0.1", resolve));
    try {
      const { person, cost } = await fallBackAndChat(
        newPerson,
        { name: "alice", budgetMs: WT_TIMEOUT_MS + JITTER_MS, what: "UDP dropped" },
        testInfo,
      );
      // It really waited for WebTransport: the bound, not an instant failure.
      expect(cost.submit).toBeGreaterThanOrEqual(WT_TIMEOUT_MS - JITTER_MS);
      // The failure is remembered (the engine's worker wrote it to the tab's localStorage): a
      // reload goes straight to WebSocket.
      expect(await person.evaluate(() => localStorage.getItem("qpq.webtransport.failedAt"))).not.toBeNull();
      await person.reload();
      await expectOnline(person, { transport: "WebSocket" });
      const again = await times(person);
      console.log(`UDP dropped, after a reload: page load → "${again.via}" ${again.loadToOnline} ms`);
      expect(again.via).toBe("Online via WebSocket");
    } finally {
      blackhole.close();
    }
  });
});

test.describe("UDP port closed", () => {
  test.use({ gatewayArgs: ["--webtransport-url", `https://127.0.0.1:${DEAD_UDP_PORT}/wt`] });

  test("a new user is on WebSocket at once and chats", async ({ stack, newPerson }, testInfo) => {
    await fallBackAndChat(newPerson, { name: "alice", budgetMs: WT_TIMEOUT_MS, what: "UDP closed" }, testInfo);
  });
});

// These two change what the page sees (a route, a missing WebTransport), which a SharedWorker
// would not see: they run where the tab runs the engine.

test.describe("a refused certificate", () => {
  test("a wrong certificate hash falls back at once, and WebTransport is tried again five minutes later", async ({ stack, newPerson }, testInfo) => {
    const wrongHash = async (context) => {
      await withoutSharedWorker(context);
      await context.route("**/transport.json", async (route) => {
        const info = await (await route.fetch()).json();
        info.webtransport.certHashes = [Buffer.alloc(32, 7).toString("base64")];
        await route.fulfill({ json: info });
      });
    };
    const { person, baseline } = await fallBackAndChat(
      newPerson,
      { name: "alice", prepare: wrongHash, budgetMs: WT_TIMEOUT_MS, what: "wrong certificate hash" },
      testInfo,
    );
    // The right hash again: within five minutes WebSocket is used without trying...
    await person.context().unroute("**/transport.json");
    await person.reload();
    await expectOnline(person, { transport: "WebSocket" });
    // ...and once they are over, WebTransport is tried again and used.
    await person.evaluate(() => {
      const t = Number(localStorage.getItem("qpq.webtransport.failedAt"));
      localStorage.setItem("qpq.webtransport.failedAt", String(t - 6 * 60 * 1000));
    });
    await person.reload();
    await expectOnline(person, { transport: "WebTransport" });
    await openConversation(person, "base@localhost");
    await send(person, "back on WebTransport");
    await expectChat(baseline, ["hello over the fallback from alice", "received", "back on WebTransport"]);
    await expect(ownMessage(person, "back on WebTransport").locator(".msg-status")).toHaveText(DELIVERED);
  });
});

test.describe("no WebTransport in the browser", () => {
  test("a new user is on WebSocket at once and chats", async ({ stack, newPerson }, testInfo) => {
    const noWebTransport = async (context) => {
      await withoutSharedWorker(context);
      await context.addInitScript(() => delete window.WebTransport);
    };
    await fallBackAndChat(newPerson, { name: "alice", prepare: noWebTransport, budgetMs: WT_TIMEOUT_MS, what: "no WebTransport" }, testInfo);
  });
});

test.describe("a gateway without HTTP/3", () => {
  test.use({ gatewayArgs: ["--no-http3"] });

  test("offers no WebTransport, so a new user is on WebSocket at once and chats", async ({ stack, newPerson }, testInfo) => {
    const info = await (await fetch(`${stack.url}/transport.json`)).json();
    expect(info).toEqual({ webtransport: null });
    await fallBackAndChat(newPerson, { name: "alice", budgetMs: WT_TIMEOUT_MS, what: "gateway without HTTP/3" }, testInfo);
  });
});

test("the connection indicator names the transport in use", async ({ stack, newPerson }) => {
  const alice = await newPerson({}, { url: appUrlFor("auto") });
  await createAccount(alice, "alice", { transport: "WebTransport" });
  await expect(connection(alice)).toHaveAttribute("data-state", "online");
});
