// Benchmark (not a test): upload and download throughput of a large file through the
// gateway and a node, as a fraction of a raw transfer of the same bytes over the same
// transport, in the same run.
//
//   cd playwright && node bench/files.mjs [megabytes]      (default 64)
//
// Needs what scripts/test-browser.sh builds (pkg/, the qpq-server and qpq-gateway binaries in
// $QPQ_BIN_DIR or target/debug). For each transport (WebSocket, WebTransport) Alice and Bob
// sign up in their own browser contexts and chat. Upload: Alice picks the file in the UI; the
// time runs until the upload has left her screen (every chunk encrypted in wasm, sent
// through the gateway, stored by the node, and the file message sent). Download: Bob presses
// Download; the time runs until every chunk is fetched, decrypted, stored in IndexedDB and
// the whole file's hash checked. Raw: from Alice's page, the same bytes in chunks of the
// same size through the gateway's /echo (`--bench-echo`) of the same transport, one chunk in
// flight at a time like the client's upload and download, each waiting for its echo. The
// echo carries every chunk back, so the raw figure moves the bytes both ways: it is a
// conservative baseline (a raw one-way transfer would be somewhat faster).

import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { benchStack, chatPair } from "./common.mjs";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";

const MEGABYTES = Number(process.argv[2] ?? 64);
const SIZE = MEGABYTES * 1024 * 1024;
/** The client's chunk: 256 KiB of plaintext plus the 16-byte tag. */
const CHUNK = 256 * 1024 + 16;
/** Raw transfer of `total` bytes in `chunk`-sized messages through /echo, in ms. */
function rawEcho(page, transport, total, chunk) {
  return page.evaluate(
    async ({ transport, total, chunk }) => {
      const payload = new Uint8Array(chunk);
      crypto.getRandomValues(payload.subarray(0, 65536));
      const count = Math.ceil(total / chunk);
      if (transport === "websocket") {
        const ws = new WebSocket(`ws://${location.host}/echo`);
        ws.binaryType = "arraybuffer";
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error("the echo WebSocket did not open"));
        });
        let answer = null;
        ws.onmessage = (e) => answer?.(e.data);
        const t0 = performance.now();
        for (let i = 0; i < count; i++) {
          const got = new Promise((resolve) => (answer = resolve));
          ws.send(payload);
          await got;
        }
        const ms = performance.now() - t0;
        ws.close();
        return ms;
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
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        await writer.write(payload);
        let got = 0;
        while (got < chunk) {
          const { value, done } = await reader.read();
          if (done) throw new Error("the echo stream ended");
          got += value.byteLength;
        }
      }
      const ms = performance.now() - t0;
      wt.close();
      return ms;
    },
    { transport, total, chunk },
  );
}

async function measure(browser, transport, file, sha) {
  const { alice, bob } = await chatPair(browser, transport, "a file follows", { acceptDownloads: true });
  const a = alice.page;
  const b = bob.page;

  let t0 = Date.now();
  await a.getByLabel("Attach file").setInputFiles(file);
  await a.getByRole("progressbar", { name: "Upload of bench.bin" }).waitFor();
  await a.getByRole("progressbar", { name: "Upload of bench.bin" }).waitFor({ state: "detached", timeout: 10 * 60_000 });
  const uploadMs = Date.now() - t0;
  if (await a.getByText("Not sent").count()) throw new Error("the upload failed");

  const saved = b.waitForEvent("download", { timeout: 10 * 60_000 });
  t0 = Date.now();
  await b.getByRole("button", { name: "Download bench.bin" }).click();
  const download = await saved;
  const downloadMs = Date.now() - t0;
  const got = createHash("sha256");
  const fh = await open(await download.path());
  for await (const part of fh.createReadStream()) got.update(part);
  if (got.digest("hex") !== sha) throw new Error("the downloaded file differs");

  const rawMs = await rawEcho(a, transport, SIZE, CHUNK);
  await alice.context.close();
  await bob.context.close();
  return { transport: transport === "webtransport" ? "WebTransport" : "WebSocket", uploadMs, downloadMs, rawMs };
}

const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-bench-files-"));
const file = path.join(dir, "bench.bin");
const hash = createHash("sha256");
const fh = await open(file, "w");
for (let done = 0; done < SIZE; done += 1 << 20) {
  const part = randomBytes(Math.min(1 << 20, SIZE - done));
  hash.update(part);
  await fh.write(part);
}
await fh.close();
const sha = hash.digest("hex");

const stack = await benchStack(dir);
const browser = await chromium.launch({ ...CHROMIUM_LAUNCH, headless: true });
try {
  const results = [];
  for (const t of ["websocket", "webtransport"]) results.push(await measure(browser, t, file, sha));
  const mbps = (ms) => (SIZE / 1e6 / (ms / 1000)).toFixed(1);
  console.log(`\n${MEGABYTES} MiB file, ${CHUNK}-byte chunks; one node (SQLite), binaries from ${process.env.QPQ_BIN_DIR ?? "target/debug"}, Chromium ${browser.version()} headless\n`);
  console.log("| transport | upload MB/s | download MB/s | raw echo MB/s | upload / raw | download / raw |");
  console.log("|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.transport} | ${mbps(r.uploadMs)} | ${mbps(r.downloadMs)} | ${mbps(r.rawMs)} | ${(r.rawMs / r.uploadMs).toFixed(2)} | ${(r.rawMs / r.downloadMs).toFixed(2)} |`,
    );
  }
} finally {
  await browser.close();
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
}
