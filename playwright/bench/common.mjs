// What the browser benchmarks share: the stack they measure (one node on SQLite and a gateway
// with `--bench-echo`, on the test ports) and two people in a 1:1 chat over a forced transport.

import path from "node:path";
import { withoutSharedWorker } from "../support/engine-worker.js";
import { startGateway, startServer } from "../support/processes.js";

// The test ports of Playwright's first worker, unless moved the way the tests' are (beside
// another run on the same machine).
const PORT = Number(process.env.QPQ_TEST_GATEWAY_PORT ?? 18080);
const HTTPS_PORT = Number(process.env.QPQ_TEST_GATEWAY_HTTPS_PORT ?? 18443);
const NODE_PORT = Number((process.env.QPQ_TEST_NODE_PORTS ?? "17443").split(",")[0]);
const BASE = `http://127.0.0.1:${PORT}`;

/**
 * Starts one node and the gateway (with `/echo`), logging into `dir`. The gateway serves the
 * repository's www/ and pkg/, or the copies QPQ_BENCH_WWW and QPQ_BENCH_PKG name (with
 * QPQ_BIN_DIR, so that runs of an older and a newer build can alternate on one machine).
 */
export async function benchStack(dir) {
  const node = await startServer({ name: "node", port: NODE_PORT, dataDir: path.join(dir, "node"), logDir: dir });
  const gateway = await startGateway({
    port: PORT,
    httpsPort: HTTPS_PORT,
    nodes: [node],
    logDir: dir,
    args: ["--bench-echo"],
    www: process.env.QPQ_BENCH_WWW || undefined,
    pkg: process.env.QPQ_BENCH_PKG || undefined,
  });
  return {
    async stop() {
      await gateway.stop();
      await node.stop("SIGINT");
    },
  };
}

/**
 * Signs `name` up in a context of its own, with the page forced onto `transport`. With
 * QPQ_BENCH_ENGINE=page the context has no SharedWorker, so the page runs the engine itself
 * (what a browser without SharedWorker does), for comparisons in one machine's runs.
 */
export async function signUp(browser, transport, name, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  if (process.env.QPQ_BENCH_ENGINE === "page") await withoutSharedWorker(context);
  const page = await context.newPage();
  await page.goto(`${BASE}/?transport=${transport}`);
  await page.getByRole("textbox", { name: "Username" }).fill(name);
  await page.getByRole("button", { name: "Create account" }).click();
  const via = transport === "webtransport" ? "WebTransport" : "WebSocket";
  await page.getByRole("status", { name: "Connection" }).filter({ hasText: `Online via ${via}` }).waitFor();
  return { context, page };
}

/**
 * Alice and Bob (names tagged by transport) sign up; Alice starts a chat with Bob and sends
 * `firstText`; Bob accepts it (Alice is not his contact, so it arrives as a message request)
 * and opens it. Both pages then show the chat.
 */
export async function chatPair(browser, transport, firstText, contextOptions = {}) {
  const tag = transport === "webtransport" ? "wt" : "ws";
  const alice = await signUp(browser, transport, `alice${tag}`, contextOptions);
  const bob = await signUp(browser, transport, `bob${tag}`, contextOptions);
  const a = alice.page;
  await a.getByRole("button", { name: "New chat" }).click();
  await a.getByRole("textbox", { name: "Recipient" }).fill(`bob${tag}`);
  await a.getByRole("button", { name: "Start chat" }).click();
  await a.getByRole("heading", { level: 2, name: `bob${tag}@localhost` }).waitFor();
  await a.getByRole("textbox", { name: "Message", exact: true }).fill(firstText);
  await a.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
  await bob.page
    .getByRole("list", { name: "Message requests" })
    .getByRole("listitem")
    .filter({ hasText: `alice${tag}@localhost` })
    .getByRole("button", { name: "Accept", exact: true })
    .click();
  await bob.page
    .getByRole("list", { name: "Conversations" })
    .getByRole("button", { name: new RegExp(`^alice${tag}@localhost`) })
    .click();
  return { alice, bob };
}
