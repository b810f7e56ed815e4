// Browser end-to-end tests: Debian's Chromium against a real gateway and real server nodes
// (started per test by the fixtures in support/stack.js). Run with ../scripts/test-browser.sh.

import { defineConfig } from "@playwright/test";
import { CHROMIUM_LAUNCH } from "./support/chromium.js";

export default defineConfig({
  testDir: "./tests",
  // The tests start processes on fixed ports (IndexedDB is per origin, and the origin
  // includes the port), and two cores are enough for one test at a time.
  workers: 1,
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
});
