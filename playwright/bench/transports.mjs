// Benchmark (not a test): browser-to-browser round trip and messages per second over
// WebTransport and over WebSocket, in the same run, through a real gateway and node.
//
//   cd playwright && node bench/transports.mjs [round trips] [burst size] [echo bytes]
//
// Needs what scripts/test-browser.sh builds (pkg/, target/debug/qpq-server and qpq-gateway,
// or $QPQ_BIN_DIR). For each transport two people sign up in their own browser contexts
// (the page opened with ?transport=…), Alice starts a chat with Bob, and Bob's page replies
// "pong N" to every "ping N" it shows. Alice's page then measures, in the page, the time
// from pressing Enter on "ping N" to "pong N" appearing (the round trip: MLS encryption,
// gateway, node, delivery and rendering, twice); and the time from Alice submitting a burst
// of messages until Bob's page shows all of them (messages per second). Then, from Alice's
// page on the same gateway (started with --bench-echo), raw echo round trips on /echo over
// the same transport: what the transport and gateway cost without MLS, node or rendering.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { benchStack, chatPair } from "./common.mjs";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";

const ROUND_TRIPS = Number(process.argv[2] ?? 50);
const BURST = Number(process.argv[3] ?? 100);
const WARM_UP = 5;
/** Size of one raw echo message: about what one chat message is on the wire. */
const ECHO_BYTES = Number(process.argv[4] ?? 1024);

/** Makes Bob's page answer every "ping N" it shows with "pong N". */
async function autoReply(page) {
  await page.evaluate(() => {
    const log = document.getElementById("messages");
    const input = document.getElementById("composer-input");
    const form = document.getElementById("composer");
    const answered = new Set();
    const check = () => {
      for (const b of log.querySelectorAll(".msg:not(.outgoing) .msg-body")) {
        const m = /^ping (\d+)$/.exec(b.textContent);
        if (m && !answered.has(m[1])) {
          answered.add(m[1]);
          input.value = `pong ${m[1]}`;
          form.requestSubmit();
        }
      }
    };
    new MutationObserver(check).observe(log, { childList: true, subtree: true, characterData: true });
    check();
  });
}

/** Round trips measured in Alice's page, in ms. */
function roundTrips(page, from, count) {
  return page.evaluate(
    async ({ from, count }) => {
      const log = document.getElementById("messages");
      const input = document.getElementById("composer-input");
      const form = document.getElementById("composer");
      const shown = (t) => [...log.querySelectorAll(".msg:not(.outgoing) .msg-body")].some((b) => b.textContent === t);
      const rtts = [];
      for (let i = from; i < from + count; i++) {
        const t0 = performance.now();
        input.value = `ping ${i}`;
        form.requestSubmit();
        await new Promise((resolve) => {
          const obs = new MutationObserver(() => {
            if (shown(`pong ${i}`)) {
              obs.disconnect();
              resolve();
            }
          });
          obs.observe(log, { childList: true, subtree: true, characterData: true });
          if (shown(`pong ${i}`)) {
            obs.disconnect();
            resolve();
          }
        });
        rtts.push(performance.now() - t0);
      }
      return rtts;
    },
    { from, count },
  );
}

/**
 * Raw echo round trips from `page` on the gateway's `/echo` (`--bench-echo`): one message of
 * `size` bytes at a time over a WebSocket, or over a WebTransport stream, in ms.
 */
function echoRoundTrips(page, transport, size, count) {
  return page.evaluate(
    async ({ transport, size, count }) => {
      const payload = new Uint8Array(size).map((_, i) => i % 251);
      const rtts = [];
      if (transport === "websocket") {
        const ws = new WebSocket(`ws://${location.host}/echo`);
        ws.binaryType = "arraybuffer";
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error("the echo WebSocket did not open"));
        });
        let answer = null;
        ws.onmessage = (e) => answer?.(e.data);
        for (let i = 0; i < count; i++) {
          const t0 = performance.now();
          const got = new Promise((resolve) => (answer = resolve));
          ws.send(payload);
          const back = await got;
          if (back.byteLength !== size) throw new Error(`echo returned ${back.byteLength} bytes`);
          rtts.push(performance.now() - t0);
        }
        ws.close();
        return rtts;
      }
      const info = (await (await fetch("/transport.json")).json()).webtransport;
      const url = info.url.replace(/\/wt$/, "/echo");
      const serverCertificateHashes = info.certHashes.map((h) => ({
        algorithm: "sha-256",
        value: Uint8Array.from(atob(h), (c) => c.charCodeAt(0)),
      }));
      const wt = new WebTransport(url, { serverCertificateHashes });
      await wt.ready;
      const stream = await wt.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      const reader = stream.readable.getReader();
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        await writer.write(payload);
        let got = 0;
        while (got < size) {
          const { value, done } = await reader.read();
          if (done) throw new Error("the echo stream ended");
          got += value.byteLength;
        }
        rtts.push(performance.now() - t0);
      }
      wt.close();
      return rtts;
    },
    { transport, size, count },
  );
}

async function burst(alice, bob, n) {
  const bobHasAll = bob.evaluate(
    (n) =>
      new Promise((resolve) => {
        const log = document.getElementById("messages");
        const count = () => [...log.querySelectorAll(".msg:not(.outgoing) .msg-body")].filter((b) => b.textContent.startsWith("burst ")).length;
        const obs = new MutationObserver(() => {
          if (count() >= n) {
            obs.disconnect();
            resolve();
          }
        });
        obs.observe(log, { childList: true, subtree: true, characterData: true });
      }),
    n,
  );
  const t0 = Date.now();
  await alice.evaluate((n) => {
    const input = document.getElementById("composer-input");
    const form = document.getElementById("composer");
    for (let i = 0; i < n; i++) {
      input.value = `burst ${i}`;
      form.requestSubmit();
    }
  }, n);
  await bobHasAll;
  return Date.now() - t0;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function measure(browser, transport) {
  const { alice, bob } = await chatPair(browser, transport, "hello");
  await autoReply(bob.page);
  await roundTrips(alice.page, 0, WARM_UP);
  const rtts = await roundTrips(alice.page, WARM_UP, ROUND_TRIPS);
  const burstMs = await burst(alice.page, bob.page, BURST);
  // The same page, the same gateway: the transport alone, with nothing behind it.
  await echoRoundTrips(alice.page, transport, ECHO_BYTES, WARM_UP);
  const echo = await echoRoundTrips(alice.page, transport, ECHO_BYTES, ROUND_TRIPS);
  await alice.context.close();
  await bob.context.close();
  return {
    transport: transport === "webtransport" ? "WebTransport" : "WebSocket",
    chat: stats(rtts),
    echo: stats(echo),
    perSec: (BURST * 1000) / burstMs,
    burstMs,
  };
}

function stats(xs) {
  return { median: pct(xs, 50), p90: pct(xs, 90), min: Math.min(...xs), max: Math.max(...xs) };
}

const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-bench-"));
const stack = await benchStack(dir);
const browser = await chromium.launch({ ...CHROMIUM_LAUNCH, headless: true });
try {
  const results = [];
  // One after the other, on the same gateway, node and browser.
  for (const t of ["webtransport", "websocket"]) results.push(await measure(browser, t));
  const f = (x) => x.toFixed(1);
  console.log(`\n${ROUND_TRIPS} round trips after ${WARM_UP} warm-up, then a burst of ${BURST} messages; raw echo: ${ROUND_TRIPS} round trips of ${ECHO_BYTES} bytes on /echo of the same gateway, from the same page; one node (SQLite), binaries from ${process.env.QPQ_BIN_DIR ?? "target/debug"}, Chromium ${browser.version()} headless\n`);
  console.log("| transport | path | round trip median (ms) | p90 (ms) | min (ms) | max (ms) | burst: messages/s | burst: total (ms) |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const c = r.chat;
    console.log(`| ${r.transport} | browser → gateway → node → browser (chat) | ${f(c.median)} | ${f(c.p90)} | ${f(c.min)} | ${f(c.max)} | ${f(r.perSec)} | ${r.burstMs} |`);
  }
  for (const r of results) {
    const e = r.echo;
    console.log(`| ${r.transport} | browser → gateway /echo → browser (raw) | ${f(e.median)} | ${f(e.p90)} | ${f(e.min)} | ${f(e.max)} | – | – |`);
  }
  const [wt, ws] = results;
  console.log("\nRatios (median round trip; messages/s):");
  console.log(`- chat, WebTransport / WebSocket: ${(wt.chat.median / ws.chat.median).toFixed(2)}× round trip, ${(wt.perSec / ws.perSec).toFixed(2)}× messages/s`);
  console.log(`- raw echo, WebTransport / WebSocket: ${(wt.echo.median / ws.echo.median).toFixed(2)}×`);
  console.log(`- chat / raw echo over WebSocket: ${(ws.chat.median / ws.echo.median).toFixed(1)}× (${f(ws.chat.median - ws.echo.median)} ms spent above the transport)`);
  console.log(`- chat / raw echo over WebTransport: ${(wt.chat.median / wt.echo.median).toFixed(1)}× (${f(wt.chat.median - wt.echo.median)} ms spent above the transport)`);
} finally {
  await browser.close();
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
}
