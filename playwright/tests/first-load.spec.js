import { withoutSharedWorker } from "../support/engine-worker.js";
import { test, expect } from "../support/stack.js";

test("the first load shows progress, and a failed download is explained", async ({ stack, browser, appUrl }) => {
  // Both pages are first loads: without the service worker the first page installs, which
  // would answer the second page's engine download from its offline copy (tests/pwa.spec.js).
  // Without SharedWorker, the tab downloads the engine itself, where a route can hold it (a
  // SharedWorker's own requests are out of the routes' reach); the progress and the sentences
  // are the same wherever the engine loads.
  const context = await browser.newContext({ serviceWorkers: "block" });
  await withoutSharedWorker(context);
  try {
    // Hold the engine's download until the progress has been seen.
    const page = await context.newPage();
    let release;
    const held = new Promise((r) => (release = r));
    await page.route("**/pkg/qpq_web_bg.wasm", async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(appUrl);
    await expect(page.getByRole("progressbar", { name: /Loading the encryption engine/ })).toBeVisible();
    release();
    await expect(page.getByRole("textbox", { name: "Username" })).toBeVisible();
    await expect(page.getByRole("progressbar")).toBeHidden();

    const broken = await context.newPage();
    await broken.route("**/pkg/qpq_web_bg.wasm", (route) => route.fulfill({ status: 404, body: "not found" }));
    // The first tab holds the engine; close it so this one may start.
    await page.close();
    await broken.goto(appUrl);
    await expect(broken.getByRole("heading", { name: "quicproquo could not start" })).toBeVisible();
    await expect(broken.getByRole("alert")).toHaveText(
      "The server did not send the app's engine (HTTP 404); try again later.",
    );
    await expect(broken.getByRole("button", { name: "Reload" })).toBeVisible();
  } finally {
    await context.close();
  }
});

test("when the engine's SharedWorker cannot be loaded, the page says so", async ({ stack, browser, appUrl }) => {
  const context = await browser.newContext({ serviceWorkers: "block" });
  try {
    await context.route("**/engine-worker.js", (route) => route.fulfill({ status: 404, body: "not found" }));
    const page = await context.newPage();
    await page.goto(appUrl);
    await expect(page.getByRole("heading", { name: "quicproquo could not start" })).toBeVisible();
    await expect(page.getByRole("alert")).toHaveText("The app's engine could not be loaded. Check your connection and reload the page.");
  } finally {
    await context.close();
  }
});
