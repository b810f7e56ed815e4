import fs from "node:fs";
import { test, expect } from "../support/stack.js";
import { startNativeClient } from "../support/processes.js";
import {
  DOMAIN,
  createAccount,
  createGroup,
  expectChat,
  expectOnline,
  openConversation,
  ownMessage,
  send,
  startChat,
} from "../support/app.js";

const PASSPHRASE = "a long walk on the beach";

/** Devices → Passphrase → Back up; saves the file the browser downloads to `file`. */
async function backUp(page, file) {
  await page.getByRole("button", { name: "Devices" }).click();
  const devices = page.getByRole("dialog", { name: "Your devices" });
  await devices.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
  const saving = page.waitForEvent("download");
  await devices.getByRole("button", { name: "Back up" }).click();
  await (await saving).saveAs(file);
  await devices.getByRole("button", { name: "Close" }).click();
}

/** On a new browser's sign-up screen: I already have an account → the backup file → Passphrase → Restore from backup. */
async function restoreFrom(page, file, passphrase) {
  const form = page.locator("#restore-form");
  if (!(await form.isVisible())) await page.getByRole("button", { name: "I already have an account" }).click();
  await form.getByLabel("Backup file").setInputFiles(file);
  await form.getByLabel("Passphrase", { exact: true }).fill(passphrase);
  await form.getByRole("button", { name: "Restore from backup" }).click();
}

test("Alice backs up, loses her browser for good, and a fresh one restores her chats and history; a tampered backup and a wrong passphrase are refused in words", async ({
  stack,
  newPerson,
}, testInfo) => {
  test.setTimeout(120_000);
  const alice = await newPerson();
  const bob = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "before the backup");
  await openConversation(bob, `alice@${DOMAIN}`);
  await send(bob, "reply before the backup");
  await createGroup(alice, "Trip", ["bob"]);
  await send(alice, "group before the backup");
  await openConversation(bob, "Trip");
  await expectChat(bob, ["group before the backup"]);

  // Devices → Passphrase → Back up: the browser saves the file.
  await alice.getByRole("button", { name: "Devices" }).click();
  const devices = alice.getByRole("dialog", { name: "Your devices" });
  await devices.getByRole("button", { name: "Back up" }).click();
  await expect(devices.getByRole("alert").filter({ hasText: "passphrase" })).toHaveText(
    "Choose a passphrase of at least 8 characters for the backup.",
  );
  await devices.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
  const saving = alice.waitForEvent("download");
  await devices.getByRole("button", { name: "Back up" }).click();
  const download = await saving;
  expect(download.suggestedFilename()).toMatch(/^quicproquo-alice_localhost-\d{4}-\d\d-\d\d\.qpqbackup$/);
  const file = testInfo.outputPath("alice.qpqbackup");
  await download.saveAs(file);
  await expect(devices.getByRole("status").filter({ hasText: "Backup saved" })).toContainText(
    `Backup saved as ${download.suggestedFilename()}`,
  );
  const bytes = fs.readFileSync(file);
  for (const secret of ["before the backup", "reply before the backup", "Trip", `alice@${DOMAIN}`]) {
    expect(bytes.includes(Buffer.from(secret)), `the file shows “${secret}”`).toBe(false);
  }
  // Her browser is gone for good.
  await alice.context().close();

  // A fresh browser: a changed byte and a wrong passphrase are refused, then it restores.
  const fresh = await newPerson();
  const tampered = testInfo.outputPath("tampered.qpqbackup");
  const bent = Buffer.from(bytes);
  bent[Math.floor(bent.length / 2)] ^= 0x01;
  fs.writeFileSync(tampered, bent);
  const errors = fresh.locator("#restore-form").getByRole("alert");
  await restoreFrom(fresh, tampered, PASSPHRASE);
  await expect(errors).toHaveText("This backup file is damaged or was changed, so it cannot be restored.");
  await restoreFrom(fresh, file, "not the passphrase");
  await expect(errors).toHaveText("That passphrase does not open this backup.");
  await restoreFrom(fresh, file, PASSPHRASE);
  await expect(fresh.getByText(`Signed in as alice@${DOMAIN}`)).toBeVisible();
  await expectOnline(fresh);

  // Bob's browser adds the restored device to both conversations; their history is back.
  const list = fresh.getByRole("list", { name: "Conversations" }).getByRole("button");
  await expect(list).toHaveCount(2, { timeout: 30_000 });
  await openConversation(fresh, `bob@${DOMAIN}`);
  await expectChat(fresh, ["before the backup", "reply before the backup"]);
  await expect(ownMessage(fresh, "before the backup")).toBeVisible();
  await openConversation(fresh, "Trip");
  await expectChat(fresh, ["group before the backup"]);

  // And they talk again, both ways.
  await send(fresh, "restored and here");
  await expectChat(bob, ["group before the backup", "restored and here"]);
  await openConversation(bob, `alice@${DOMAIN}`);
  await send(bob, "welcome back");
  await openConversation(fresh, `bob@${DOMAIN}`);
  await expectChat(fresh, ["before the backup", "reply before the backup", "welcome back"]);

  // The restored browser is the account's only device.
  await fresh.getByRole("button", { name: "Devices" }).click();
  const rows = fresh.getByRole("dialog", { name: "Your devices" }).getByRole("list", { name: "Devices" }).getByRole("listitem");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("this device");
});

test("a terminal's backup restores in a browser, and the browser's in a terminal", async ({ stack, newPerson }, testInfo) => {
  test.setTimeout(120_000);
  const bob = await newPerson();
  await createAccount(bob, "bob");
  const node = stack.nodes[0];
  const fromTerminal = testInfo.outputPath("carol-terminal.qpqbackup");
  const carol = startNativeClient({ name: "carol-terminal", node, dir: stack.dir, args: ["--register", "carol"] });
  await carol.waitForOutput(`you are carol@${DOMAIN}`);
  await carol.waitForOutput("* online");
  carol.type("chat bob");
  await carol.waitForOutput("chat ready");
  carol.type("send 1 from carol's terminal");
  await openConversation(bob, `carol@${DOMAIN}`);
  await expectChat(bob, ["from carol's terminal"]);
  carol.type(`backup ${fromTerminal} ${PASSPHRASE}`);
  await carol.waitForOutput("* backup written to");
  await carol.stop();

  // The terminal's file in a fresh browser.
  const browser = await newPerson();
  await restoreFrom(browser, fromTerminal, PASSPHRASE);
  await expect(browser.getByText(`Signed in as carol@${DOMAIN}`)).toBeVisible();
  await expect(browser.getByRole("list", { name: "Conversations" }).getByRole("button")).toHaveCount(1, { timeout: 30_000 });
  await openConversation(browser, `bob@${DOMAIN}`);
  await expectChat(browser, ["from carol's terminal"]);
  await send(browser, "from carol's browser");
  await expectChat(bob, ["from carol's terminal", "from carol's browser"]);

  // And back: the browser's file in a terminal (the passphrase on its first line of input).
  const fromBrowser = testInfo.outputPath("carol-browser.qpqbackup");
  await backUp(browser, fromBrowser);
  const again = startNativeClient({ name: "carol-again", node, dir: stack.dir, args: ["--restore", fromBrowser] });
  await again.waitForOutput("passphrase of");
  again.type(PASSPHRASE);
  await again.waitForOutput(`restored carol@${DOMAIN}`);
  await again.waitForOutput("! a conversation from your backup is back, with its history", 30_000);
  await send(bob, "hi carol's terminal");
  await again.waitForOutput("hi carol's terminal");
  again.type("history 1");
  await again.waitForOutput("from carol's browser");
  await again.stop();
});
