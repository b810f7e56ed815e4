// Safety numbers: both people see the same number; a verified contact whose identity key
// changes (account deleted and registered again) is not written to until the new number is
// compared and verified.

import { test, expect } from "../support/stack.js";
import { DOMAIN, chatOfTwo, createAccount, expectChat, openConversation, send, systemEntries } from "../support/app.js";

// Bob registers again under his name straight after deleting it.
test.use({ nodeArgs: ["--name-cooldown-days", "0"] });

/** Opens Chat info → Safety number of `who`; returns the dialog once it shows the digits. */
async function openSafetyNumber(page, who) {
  await page.getByRole("button", { name: "Chat info" }).click();
  await page.getByRole("button", { name: `Safety number of ${who}` }).click();
  return safetyDialog(page);
}

async function safetyDialog(page) {
  const dialog = page.getByRole("dialog", { name: "Safety number" });
  await expect(dialog.getByLabel("Safety number digits")).toHaveText(/^(\d{5} ){11}\d{5}$/);
  return dialog;
}

async function digitsIn(dialog) {
  return dialog.getByLabel("Safety number digits").textContent();
}

test("both see the same safety number; a verified contact's new key blocks writing until verified again", async ({ stack, newPerson }) => {
  const alice = await newPerson();
  const bob = await newPerson();
  await chatOfTwo(alice, bob, "hello bob", "hello alice");

  const aliceView = await openSafetyNumber(alice, `bob@${DOMAIN}`);
  const bobView = await openSafetyNumber(bob, `alice@${DOMAIN}`);
  const number = await digitsIn(aliceView);
  expect(await digitsIn(bobView)).toBe(number);
  // The QR code is drawn (its pixels are not blank).
  const qrInk = await aliceView.getByRole("img", { name: "QR code of the safety number" }).evaluate((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let dark = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++;
    return dark;
  });
  expect(qrInk).toBeGreaterThan(100);

  await expect(aliceView.getByRole("status", { name: "Verification" })).toHaveText(/^Not verified/);
  await aliceView.getByRole("button", { name: "Mark as verified" }).click();
  await expect(aliceView.getByRole("status", { name: "Verification" })).toHaveText(/^Verified/);
  await aliceView.getByRole("button", { name: "Close" }).click();
  await bobView.getByRole("button", { name: "Close" }).click();
  await expect(alice.getByRole("dialog", { name: "Chat with bob@localhost" }).getByText("verified", { exact: true })).toBeVisible();
  await alice.getByRole("dialog", { name: "Chat with bob@localhost" }).getByRole("button", { name: "Close" }).click();
  await bob.getByRole("dialog", { name: "Chat with alice@localhost" }).getByRole("button", { name: "Close" }).click();

  // Bob's account is deleted and registered again: a new identity key under the same name.
  await bob.getByRole("button", { name: "Delete account" }).click();
  await bob.getByRole("dialog", { name: "Delete your account?" }).getByRole("button", { name: "Delete account" }).click();
  await expect(bob.getByRole("button", { name: "Create account" })).toBeVisible({ timeout: 20_000 });
  await expect(systemEntries(alice).filter({ hasText: `bob@${DOMAIN} deleted their account` })).toHaveCount(1);
  await createAccount(bob, "bob");

  // Alice can no longer write to him: a new chat is refused, with the way to compare.
  await alice.getByRole("button", { name: "New chat" }).click();
  const newChat = alice.getByRole("dialog", { name: "New chat" });
  await newChat.getByRole("textbox", { name: "Recipient" }).fill("bob");
  await newChat.getByRole("button", { name: "Start chat" }).click();
  await expect(newChat.getByRole("alert")).toContainText("safety number has changed since you verified it");
  await newChat.getByRole("button", { name: "Safety number" }).click();
  const changed = await safetyDialog(alice);
  await expect(changed.getByRole("status", { name: "Verification" })).toHaveText(/^This number changed since you verified it/);
  const newNumber = await digitsIn(changed);
  expect(newNumber).not.toBe(number);

  // Bob sees the same new number; Alice verifies it and writes to him again.
  await changed.getByRole("button", { name: "Mark as verified" }).click();
  await expect(changed.getByRole("status", { name: "Verification" })).toHaveText(/^Verified/);
  await changed.getByRole("button", { name: "Close" }).click();
  await newChat.getByRole("button", { name: "Start chat" }).click();
  await expect(alice.getByRole("heading", { level: 2, name: `bob@${DOMAIN}` })).toBeVisible();
  await send(alice, "is this the new you?");
  await openConversation(bob, `alice@${DOMAIN}`);
  await expectChat(bob, ["is this the new you?"]);
  const bobNew = await openSafetyNumber(bob, `alice@${DOMAIN}`);
  expect(await digitsIn(bobNew)).toBe(newNumber);
});
