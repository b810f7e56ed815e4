// Fixtures: a fresh server and gateway for every test (so every test starts with no users),
// a two-node PostgreSQL cluster for the tests that need one, and people: browser contexts
// that are closed after the test.

import { test as base, expect } from "@playwright/test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { psql, startGateway, startServer } from "./processes.js";
import { workerPort } from "./ports.js";

/**
 * Fixed ports: IndexedDB belongs to an origin, and the origin includes the port. Each
 * Playwright worker runs its own stack, WORKER_PORT_STEP ports above the previous worker's.
 */
export const GATEWAY_PORT = workerPort(process.env.QPQ_TEST_GATEWAY_PORT ?? 18080);
/** HTTPS on TCP and HTTP/3 + WebTransport on UDP. */
export const GATEWAY_HTTPS_PORT = workerPort(process.env.QPQ_TEST_GATEWAY_HTTPS_PORT ?? 18443);
/** The nodes' QUIC ports (QPQ_TEST_NODE_PORTS="a,b" moves them, e.g. beside another run). */
export const NODE_PORTS = (process.env.QPQ_TEST_NODE_PORTS ?? "17443,17444").split(",").map(workerPort);
export const BASE_URL = `http://127.0.0.1:${GATEWAY_PORT}`;

/** The app's URL for a transport: `?transport=` forces one; "auto" is the default. */
export function appUrlFor(transport) {
  return transport === "auto" ? `${BASE_URL}/` : `${BASE_URL}/?transport=${transport}`;
}

/**
 * @typedef {Awaited<ReturnType<typeof startServer>>} Server
 * @typedef {Awaited<ReturnType<typeof startGateway>>} Gateway
 * @typedef {{dir: string, url: string, nodes: Server[], gateway: Gateway,
 *   restartGateway: () => Promise<Gateway>}} Stack
 */

async function attachLogs(testInfo, logDir) {
  if (testInfo.status === testInfo.expectedStatus) return;
  for (const f of (await readdir(logDir)).filter((f) => f.endsWith(".log"))) {
    await testInfo.attach(f, { path: path.join(logDir, f), contentType: "text/plain" });
  }
}

/** Builds a stack around `nodes` and runs `use` with it; stops everything afterwards. */
async function withStack(dir, nodes, use, testInfo, args) {
  const stack = { dir, url: BASE_URL, nodes, gateway: null };
  const start = () => startGateway({ port: GATEWAY_PORT, httpsPort: GATEWAY_HTTPS_PORT, nodes, logDir: dir, args });
  try {
    stack.gateway = await start();
    stack.restartGateway = async () => {
      await stack.gateway.stop();
      stack.gateway = await start();
      return stack.gateway;
    };
    await use(stack);
  } finally {
    await stack.gateway?.stop();
    for (const n of nodes) await n.stop("SIGINT");
    await attachLogs(testInfo, dir);
  }
}

export const test = base.extend({
  /**
   * The transport the app is opened with (a project option): "webtransport" or "websocket"
   * force one with `?transport=`, "auto" opens the plain URL.
   */
  transport: ["websocket", { option: true }],

  /** Extra gateway flags (e.g. `["--no-http3"]`). */
  gatewayArgs: [[], { option: true }],

  /** Extra server node flags (e.g. `["--push-allow-http"]`). */
  nodeArgs: [[], { option: true }],

  /** The app's URL for this project's transport. */
  appUrl: async ({ transport }, use) => {
    await use(appUrlFor(transport));
  },

  /** One node on SQLite behind the gateway. @type {Stack} */
  stack: async ({ gatewayArgs, nodeArgs }, use, testInfo) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-pw-"));
    try {
      const node = await startServer({
        name: "node",
        port: NODE_PORTS[0],
        dataDir: path.join(dir, "node"),
        logDir: dir,
        args: nodeArgs,
      });
      await withStack(dir, [node], use, testInfo, gatewayArgs);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },

  /** Two nodes sharing a fresh PostgreSQL database behind one gateway. @type {Stack} */
  cluster: async ({ gatewayArgs }, use, testInfo) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-pw-cluster-"));
    const db = `qpq_pw_${process.pid}_${Date.now()}`;
    psql(`CREATE DATABASE ${db}`);
    const database = `postgres://postgres@127.0.0.1:5432/${db}`;
    const nodes = [];
    try {
      for (const [i, port] of NODE_PORTS.entries()) {
        const name = `node${i + 1}`;
        nodes.push(await startServer({ name, port, dataDir: path.join(dir, name), logDir: dir, database }));
      }
      await withStack(dir, nodes, use, testInfo, gatewayArgs);
    } finally {
      for (const n of nodes) await n.stop("SIGKILL");
      psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await rm(dir, { recursive: true, force: true });
    }
  },

  /**
   * Opens the app for a new person (a fresh browser context: their own storage).
   * @type {(options?: import("@playwright/test").BrowserContextOptions) => Promise<import("@playwright/test").Page>}
   */
  newPerson: async ({ browser, appUrl }, use) => {
    const contexts = [];
    const problems = [];
    await use(async (options = {}, { url = appUrl, prepare } = {}) => {
      const context = await browser.newContext(options);
      contexts.push(context);
      watchForPageProblems(context, problems);
      if (prepare) await prepare(context);
      const page = await context.newPage();
      await page.goto(url);
      return page;
    });
    for (const c of contexts) await c.close();
    expect(problems, "uncaught errors or Content-Security-Policy violations in the app").toEqual([]);
  },
});

/**
 * Collects what should never happen in the app: uncaught exceptions and anything the
 * Content-Security-Policy blocked (inline script or style, eval).
 */
export function watchForPageProblems(context, problems) {
  const watch = (page) => {
    page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
    page.on("console", (m) => {
      if (/Content.Security.Policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
  };
  context.pages().forEach(watch);
  context.on("page", watch);
}

export { expect };
