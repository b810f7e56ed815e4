// The passphrase lock: with it, the browser profile on disk holds neither a message's text,
// nor a contact's name, nor the data key; the app opens only with the passphrase. The test
// derives the data key itself from the stored lock (Argon2id with hash-wasm, ChaCha20-Poly1305
// with Node's crypto), which checks the format as well as giving the bytes to look for.

import { chromium } from "@playwright/test";
import { createDecipheriv } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { argon2id } from "hash-wasm";
import { test, expect, watchForPageProblems } from "../support/stack.js";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import { createAccount, expectChat, openConversation, send, startChat } from "../support/app.js";

const PASSPHRASE = "correct horse battery staple";
const SECRET = "the combination is 31-41-59";
const REPLY = "noted, burning this message";

/** Every file under `dir`. */
async function files(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The data key inside a lock record (see client/src/passphrase.rs for the layout). */
async function openLock(lock, passphrase) {
  const header = lock.subarray(0, 29);
  const be = (i) => lock.readUInt32BE(i);
  const kek = await argon2id({
    password: passphrase,
    salt: lock.subarray(13, 29),
    memorySize: be(1),
    iterations: be(5),
    parallelism: be(9),
    hashLength: 32,
    outputType: "binary",
  });
  const d = createDecipheriv("chacha20-poly1305", Buffer.from(kek), lock.subarray(29, 41), { authTagLength: 16 });
  d.setAAD(header, { plaintextLength: 32 });
  d.setAuthTag(lock.subarray(lock.length - 16));
  return Buffer.concat([d.update(lock.subarray(41, lock.length - 16)), d.final()]);
}

test("with a passphrase the profile holds no text, name or data key, and the app opens only with it", async ({ stack, newPerson, appUrl }) => {
  test.setTimeout(90_000);
  // A name that appears nowhere in the app's own files (which the service worker caches).
  const bob = await newPerson();
  await createAccount(bob, "quillon");
  const profile = await mkdtemp(path.join(os.tmpdir(), "qpq-pw-lock-"));
  const problems = [];
  let context = null;
  const open = async () => {
    context = await chromium.launchPersistentContext(profile, { ...CHROMIUM_LAUNCH, headless: true });
    watchForPageProblems(context, problems);
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(appUrl);
    return page;
  };
  try {
    let alice = await open();
    await createAccount(alice, "alice");
    await alice.getByRole("button", { name: "Devices" }).click();
    const dialog = alice.getByRole("dialog", { name: "Your devices" });
    await expect(dialog).toContainText("No passphrase");
    await dialog.getByLabel("New passphrase").fill("short");
    await dialog.getByRole("button", { name: "Set passphrase" }).click();
    await expect(dialog.getByRole("alert").filter({ hasText: /\S/ })).toHaveText("Choose a passphrase of at least 8 characters.");
    await dialog.getByLabel("New passphrase").fill(PASSPHRASE);
    await dialog.getByRole("button", { name: "Set passphrase" }).click();
    await expect(dialog.getByRole("status").filter({ hasText: "Passphrase set" })).toBeVisible();
    await expect(dialog).toContainText("A passphrase locks quicproquo in this browser");
    const lock = Buffer.from(
      await alice.evaluate(
        () =>
          new Promise((resolve, reject) => {
            const r = indexedDB.open("qpq");
            r.onerror = () => reject(r.error);
            r.onsuccess = () => {
              const get = r.result.transaction("meta").objectStore("meta").get("lock");
              get.onsuccess = () => resolve(Array.from(get.result));
              get.onerror = () => reject(get.error);
            };
          }),
      ),
    );
    await dialog.getByRole("button", { name: "Close" }).click();

    await startChat(alice, "quillon");
    await send(alice, SECRET);
    await openConversation(bob, "alice@localhost");
    await send(bob, REPLY);
    await expectChat(alice, [SECRET, REPLY]);
    await context.close();

    // Byte by byte, every file of the profile.
    const dataKey = await openLock(lock, PASSPHRASE);
    expect(dataKey.length).toBe(32);
    const needles = {
      "the message text": [Buffer.from(SECRET), Buffer.from(SECRET, "utf16le")],
      "the reply": [Buffer.from(REPLY), Buffer.from(REPLY, "utf16le")],
      "the contact's name": [Buffer.from("quillon"), Buffer.from("quillon", "utf16le")],
      "the data key": [dataKey],
    };
    const all = await files(profile);
    expect(all.length).toBeGreaterThan(10);
    const found = [];
    for (const f of all) {
      const bytes = await readFile(f);
      for (const [what, forms] of Object.entries(needles)) {
        if (forms.some((n) => bytes.includes(n))) found.push(`${what} in ${path.relative(profile, f)}`);
      }
    }
    expect(found, "what the profile must not hold").toEqual([]);

    // Reopened, the app asks for the passphrase; a wrong one is refused, the right one opens
    // the account with its history.
    alice = await open();
    const passphrase = alice.getByRole("textbox", { name: "Passphrase" });
    await expect(passphrase).toBeVisible();
    await passphrase.fill("not the passphrase");
    await alice.getByRole("button", { name: "Unlock" }).click();
    await expect(alice.locator("#unlock-error")).toHaveText("That passphrase is not the right one. Try again.");
    await passphrase.fill(PASSPHRASE);
    await alice.getByRole("button", { name: "Unlock" }).click();
    await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
    await openConversation(alice, "quillon@localhost");
    await expectChat(alice, [SECRET, REPLY]);
    await send(bob, "after the unlock");
    await expectChat(alice, [SECRET, REPLY, "after the unlock"]);

    // Lock now: the page comes back locked.
    await alice.getByRole("button", { name: "Devices" }).click();
    await alice.getByRole("dialog", { name: "Your devices" }).getByRole("button", { name: "Lock now" }).click();
    await expect(alice.getByRole("textbox", { name: "Passphrase" })).toBeVisible();

    // Remove passphrase: the next start opens without one.
    await alice.getByRole("textbox", { name: "Passphrase" }).fill(PASSPHRASE);
    await alice.getByRole("button", { name: "Unlock" }).click();
    await alice.getByRole("button", { name: "Devices" }).click();
    await alice.getByRole("dialog", { name: "Your devices" }).getByRole("button", { name: "Remove passphrase" }).click();
    await expect(alice.getByRole("dialog", { name: "Your devices" })).toContainText("No passphrase");
    await alice.reload();
    await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
    await openConversation(alice, "quillon@localhost");
    await expectChat(alice, [SECRET, REPLY, "after the unlock"]);
  } finally {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
  }
  expect(problems).toEqual([]);
});

test("with a passphrase the app locks by itself after the idle time chosen under Lock after, counted from the last key press", async ({
  stack,
  newPerson,
}) => {
  test.setTimeout(60_000);
  // The page's clock, moved on by the test instead of waiting minutes (installed before the
  // app loads, so every timer of the page is on it).
  const alice = await newPerson({}, { prepare: (context) => context.clock.install() });
  await createAccount(alice, "alice");
  await alice.getByRole("button", { name: "Devices" }).click();
  const dialog = alice.getByRole("dialog", { name: "Your devices" });
  await dialog.getByLabel("New passphrase").fill(PASSPHRASE);
  await dialog.getByRole("button", { name: "Set passphrase" }).click();
  await expect(dialog.getByRole("status").filter({ hasText: "Passphrase set" })).toBeVisible();
  await dialog.getByLabel("Lock after").selectOption({ label: "1 minute" });
  await dialog.getByRole("button", { name: "Close" }).click();
  const passphrase = alice.getByRole("textbox", { name: "Passphrase" });

  // 40 s idle, a key press, 40 s more: still open (the countdown started again).
  await alice.clock.fastForward("00:40");
  await alice.keyboard.press("Shift");
  await alice.clock.fastForward("00:40");
  await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
  await expect(passphrase).toBeHidden();
  // A minute without a key press: locked, and the passphrase opens it again.
  await alice.clock.fastForward("00:25");
  await expect(passphrase).toBeVisible();
  await passphrase.fill(PASSPHRASE);
  await alice.getByRole("button", { name: "Unlock" }).click();
  await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
});
