// Browser end-to-end tests: Debian's Chromium against a real gateway and real server nodes
// (started per test by the fixtures in support/stack.js). Run with ../scripts/test-browser.sh.
//
// The chat scenarios run twice, once per transport (`?transport=webtransport` and
// `?transport=websocket`); the rest run over WebSocket; the fallback and the transport
// setting run in "auto", as a person's browser does.

import { defineConfig } from "@playwright/test";
import { CHROMIUM_LAUNCH } from "./support/chromium.js";

/** What a person does in a chat: run over each transport. */
const CHAT_SCENARIOS = /(direct-chat|groups|persistence|resilience)\.spec\.js$/;
/** The transport choice itself: WebTransport preferred, WebSocket as the fallback. */
const AUTO_ONLY = /(fallback|transport-setting)\.spec\.js$/;

export default defineConfig({
  testDir: "./tests",
  // The tests start processes on fixed ports (IndexedDB is per origin, and the origin
  // includes the port): each worker on its own (support/ports.js, at most two). Most of a
  // test's time is waiting on timers and the network, so two run side by side on two cores.
  workers: Number(process.env.QPQ_TEST_WORKERS ?? 2),
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  globalSetup: "./support/global-setup.js",
  outputDir: "./test-results",
  use: {
    browserName: "chromium",
    launchOptions: CHROMIUM_LAUNCH,
    trace: "retain-on-failure",
    actionTimeout: 20_000,
  },
  projects: [
    {
      name: "webtransport",
      testMatch: CHAT_SCENARIOS,
      use: { transport: "webtransport" },
    },
    {
      name: "websocket",
      testIgnore: AUTO_ONLY,
      use: { transport: "websocket" },
    },
    {
      name: "auto",
      testMatch: AUTO_ONLY,
      use: { transport: "auto" },
    },
  ],
});
