// The installable app: Chromium finds nothing missing to install it, the service worker opens
// the app and its history with the gateway stopped, and a new deployment waits until the
// person presses "Reload to update".

import { chromium } from "@playwright/test";
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test, expect, watchForPageProblems, GATEWAY_HTTPS_PORT, GATEWAY_PORT } from "../support/stack.js";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import { ROOT, startGateway } from "../support/processes.js";
import {
  DELIVERED,
  connection,
  createAccount,
  expectChat,
  expectOnline,
  openConversation,
  ownMessage,
  send,
  chatOfTwo,
} from "../support/app.js";

/** Waits until the page's service worker is active and its offline copy complete. */
async function expectOfflineReady(page) {
  await expect
    .poll(() => page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.active?.state ?? "none"))
    .toBe("activated");
}

/** The names of the app's offline copies (one per version) in the page's origin. */
function shellCaches(page) {
  return page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("qpq-shell-")));
}

test("Chromium finds the app installable", async ({ stack, appUrl }) => {
  const profile = await mkdtemp(path.join(os.tmpdir(), "qpq-pw-install-"));
  const problems = [];
  let context = null;
  try {
    // Installability is not checked in incognito-like contexts: a real profile.
    context = await chromium.launchPersistentContext(profile, { ...CHROMIUM_LAUNCH, headless: true });
    watchForPageProblems(context, problems);
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(appUrl);
    await expect(page.getByRole("textbox", { name: "Username" })).toBeVisible();
    await expectOfflineReady(page);
    await page.reload(); // now under the service worker's control
    await expect(page.getByRole("textbox", { name: "Username" })).toBeVisible();

    const cdp = await context.newCDPSession(page);
    const manifest = await cdp.send("Page.getAppManifest");
    expect(manifest.url).toBe(`${stack.url}/manifest.webmanifest`);
    expect(manifest.errors).toEqual([]);
    const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
    expect(installabilityErrors).toEqual([]);

    // The icons are the PNGs, of the sizes, that the manifest says.
    const sizes = await page.evaluate(async () => {
      const { icons } = await (await fetch("/manifest.webmanifest")).json();
      return Promise.all(
        icons.map(async (i) => {
          const bitmap = await createImageBitmap(await (await fetch(i.src)).blob());
          return `${i.purpose} ${i.sizes} ${bitmap.width}x${bitmap.height}`;
        }),
      );
    });
    expect(sizes).toEqual([
      "any 192x192 192x192",
      "any 512x512 512x512",
      "maskable 192x192 192x192",
      "maskable 512x512 512x512",
    ]);
    expect(problems).toEqual([]);
  } finally {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
  }
});

test("with the gateway stopped, a reload shows the app and its history", async ({ stack, newPerson }) => {
  const alice = await newPerson();
  const bob = await newPerson();
  await chatOfTwo(alice, bob, "before the outage", "reply before the outage");
  await expectOfflineReady(alice);

  await stack.gateway.stop();
  await alice.reload();
  await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
  await expect(connection(alice)).toContainText("Offline");
  await openConversation(alice, "bob@localhost");
  await expectChat(alice, ["before the outage", "reply before the outage"]);

  // Sending waits for the connection.
  await send(alice, "written offline");
  await expect(ownMessage(alice, "written offline").locator(".msg-status")).toHaveText("Sending…");
  await stack.restartGateway();
  await expectOnline(alice, { timeout: 60_000 });
  await expect(ownMessage(alice, "written offline").locator(".msg-status")).toHaveText(DELIVERED, { timeout: 60_000 });
  await expectChat(bob, ["before the outage", "reply before the outage", "written offline"], { timeout: 60_000 });
});

test("a new deployment waits until Reload to update", async ({ stack, newPerson }) => {
  const alice = await newPerson();
  await createAccount(alice, "alice");
  await expectOfflineReady(alice);
  await alice.reload(); // from now on the page is served by the worker
  await expectOnline(alice);
  expect(await alice.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  const [first] = await shellCaches(alice);
  expect(first).toMatch(/^qpq-shell-[0-9a-f]{16}$/);

  // The next deployment: a copy of the app that differs in index.html, listed anew.
  const www = path.join(stack.dir, "www-next");
  const pkg = path.join(stack.dir, "pkg-next");
  await cp(path.join(ROOT, "www"), www, { recursive: true });
  await cp(path.join(ROOT, "pkg"), pkg, { recursive: true });
  const index = path.join(www, "index.html");
  const html = await readFile(index, "utf8");
  await writeFile(index, html.replace("<title>", '<meta name="qpq-deployment" content="next">\n  <title>'));
  const listed = spawnSync("python3", [path.join(ROOT, "scripts/web-precache.py"), www, pkg], { encoding: "utf8" });
  expect(listed.status, listed.stderr).toBe(0);
  await stack.gateway.stop();
  stack.gateway = await startGateway({
    port: GATEWAY_PORT,
    httpsPort: GATEWAY_HTTPS_PORT,
    nodes: stack.nodes,
    logDir: stack.dir,
    www,
    pkg,
  });

  // The reload finds the new version, which installs and waits: the page is still the old one.
  const deployment = alice.locator('meta[name="qpq-deployment"]');
  await alice.reload();
  const update = alice.getByRole("button", { name: "Reload to update" });
  await expect(update).toBeVisible();
  await expect(deployment).toHaveCount(0);
  await expectOnline(alice);
  expect(await shellCaches(alice)).toHaveLength(2);
  // Another reload still runs the old version, and offers the new one again.
  await alice.reload();
  await expect(update).toBeVisible();
  await expect(deployment).toHaveCount(0);

  await update.click();
  await expect(deployment).toHaveAttribute("content", "next");
  await expect(update).toBeHidden();
  await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
  await expectOnline(alice);
  // The activated new worker deleted the old copy.
  await expect.poll(() => shellCaches(alice)).toHaveLength(1);
  expect((await shellCaches(alice))[0]).not.toBe(first);
});
