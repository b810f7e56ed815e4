// Benchmark (not a test): MLS encrypt and decrypt per second of the engine in headless
// Chromium (the wasm build in pkg/) against the same workload natively, in one run; then the
// passphrase lock's Argon2id, the same way.
//
//   cd playwright && node bench/mls.mjs
//
// The workload is `qpq_core::bench::mls_rates` (one group, one sender, one receiver, 100-byte
// texts through compose → MLS → changeset and back), run natively by `cargo bench -p qpq-core
// --bench mls` and in the page by the wasm export `benchMls`. The two alternate (native,
// browser, native, browser) so that a change in the machine's load hits both; the ratio of
// the medians is the figure.

import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ROUNDS = Number(process.env.QPQ_BENCH_ROUNDS ?? 3);
const WORKLOADS = [
  { members: 2, messages: 3000 },
  { members: 100, messages: 1000 },
];

/** Serves pkg/ and an empty page, so the module loads from an http origin. */
function servePkg() {
  const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>qpq MLS bench</title>");
      return;
    }
    const rel = path.normalize(url.pathname).replace(/^\/+/, "");
    if (!rel.startsWith("pkg/")) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(path.join(ROOT, rel));
      res.writeHead(200, { "content-type": types[path.extname(rel)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Runs the native bench binary once; returns rates keyed by member count. */
function native() {
  const out = spawnSync("cargo", ["bench", "-q", "-p", "qpq-core", "--bench", "mls"], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (out.status !== 0) throw new Error("cargo bench -p qpq-core --bench mls failed");
  const rates = {};
  for (const line of out.stdout.split("\n")) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length === 4 && f.every(Number.isFinite)) rates[f[0]] = { enc: f[2], dec: f[3] };
  }
  for (const w of WORKLOADS) {
    if (!rates[w.members]) throw new Error(`the native bench printed no row for ${w.members} members`);
  }
  return rates;
}

async function browserRates(page) {
  const rates = {};
  for (const w of WORKLOADS) {
    const r = await page.evaluate(
      ({ members, messages }) => globalThis.qpqBench(members, messages, 100),
      w,
    );
    rates[w.members] = { enc: r.encryptPerSec, dec: r.decryptPerSec };
  }
  return rates;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await servePkg();
const browser = await chromium.launch(CHROMIUM_LAUNCH);
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.evaluate(async () => {
    const m = await import("/pkg/qpq_web.js");
    await m.default();
    globalThis.qpqBench = m.benchMls;
  });
  const version = browser.version();
  const runs = { native: [], browser: [] };
  for (let i = 0; i < ROUNDS; i++) {
    process.stderr.write(`round ${i + 1}/${ROUNDS}: native…`);
    runs.native.push(native());
    process.stderr.write(" browser…\n");
    runs.browser.push(await browserRates(page));
  }
  console.log(`MLS engine, suite 0x0003, 100-byte texts; median of ${ROUNDS} alternating rounds`);
  console.log(`native: cargo bench (release); browser: Chromium ${version}, pkg/ (wasm-release)`);
  console.log(
    ["members", "messages", "native enc/s", "wasm enc/s", "ratio", "native dec/s", "wasm dec/s", "ratio"]
      .map((h) => h.padStart(14))
      .join(""),
  );
  for (const w of WORKLOADS) {
    const ne = median(runs.native.map((r) => r[w.members].enc));
    const nd = median(runs.native.map((r) => r[w.members].dec));
    const be = median(runs.browser.map((r) => r[w.members].enc));
    const bd = median(runs.browser.map((r) => r[w.members].dec));
    console.log(
      [w.members, w.messages, ne.toFixed(0), be.toFixed(0), (be / ne).toFixed(2), nd.toFixed(0), bd.toFixed(0), (bd / nd).toFixed(2)]
        .map((v) => String(v).padStart(14))
        .join(""),
    );
  }
  console.log("ratio = browser / native (1.00 would be native speed)");

  // Argon2id with the passphrase lock's parameters, the same alternation.
  const argon = { native: [], browser: [] };
  await page.evaluate(async () => {
    globalThis.qpqArgon = (await import("/pkg/qpq_web.js")).benchArgon2;
  });
  for (let i = 0; i < ROUNDS; i++) {
    const out = spawnSync("cargo", ["bench", "-q", "-p", "qpq-client", "--bench", "argon2"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    const ms = Number(/argon2id_ms (\S+)/.exec(out.stdout ?? "")?.[1]);
    if (out.status !== 0 || !Number.isFinite(ms)) throw new Error("cargo bench -p qpq-client --bench argon2 failed");
    argon.native.push(ms);
    argon.browser.push(await page.evaluate(() => globalThis.qpqArgon(5)));
  }
  const an = median(argon.native);
  const ab = median(argon.browser);
  console.log(`Argon2id, 19 MiB, 2 passes, 1 lane (the passphrase lock); median of ${ROUNDS} rounds of 5`);
  console.log(`native ${an.toFixed(0)} ms, browser ${ab.toFixed(0)} ms, browser / native ${(ab / an).toFixed(2)}`);
} finally {
  await browser.close();
  server.close();
}
