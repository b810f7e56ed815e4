import { chromium } from "@playwright/test";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test, expect, watchForPageProblems } from "../support/stack.js";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import {
  DELIVERED,
  conversationEntry,
  createAccount,
  expectChat,
  expectOnline,
  openConversation,
  ownMessage,
  send,
  startChat,
  chatOfTwo,
} from "../support/app.js";

test("a reload keeps the account, the conversations and the history", async ({ stack, newPerson }) => {
  const alice = await newPerson();
  const bob = await newPerson();
  await chatOfTwo(alice, bob, "before the reload", "reply before the reload");
  await expect(ownMessage(alice, "before the reload").locator(".msg-status")).toHaveText(DELIVERED);

  await alice.reload();
  await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
  await expect(alice.getByRole("textbox", { name: "Username" })).toBeHidden();
  await expectOnline(alice);
  await expect(conversationEntry(alice, "bob@localhost")).toContainText("reply before the reload");
  await openConversation(alice, "bob@localhost");
  await expectChat(alice, ["before the reload", "reply before the reload"]);
  await expect(ownMessage(alice, "before the reload").locator(".msg-status")).toHaveText(DELIVERED);

  // The reloaded client still sends and receives.
  await send(alice, "after the reload");
  // Two people writing at once have no agreed order; Bob answers once he has it.
  await expectChat(bob, ["before the reload", "reply before the reload", "after the reload"]);
  await send(bob, "welcome back");
  const all = ["before the reload", "reply before the reload", "after the reload", "welcome back"];
  await expectChat(alice, all);
  await expectChat(bob, all);
});

test("closing and reopening the browser keeps the identity and the history", async ({ stack, newPerson, appUrl }) => {
  const bob = await newPerson();
  await createAccount(bob, "bob");
  const profile = await mkdtemp(path.join(os.tmpdir(), "qpq-pw-profile-"));
  let browser = null;
  const problems = [];
  const openBrowser = async () => {
    browser = await chromium.launchPersistentContext(profile, { ...CHROMIUM_LAUNCH, headless: true });
    watchForPageProblems(browser, problems);
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(appUrl);
    return page;
  };
  try {
    let alice = await openBrowser();
    await createAccount(alice, "alice");
    await startChat(alice, "bob");
    await send(alice, "written before closing");
    await openConversation(bob, "alice@localhost");
    await send(bob, "reply before closing");
    await expectChat(alice, ["written before closing", "reply before closing"]);
    await browser.close();

    // While Alice's browser is closed, Bob writes; the server keeps it for her.
    await send(bob, "sent while Alice was away");
    await expect(ownMessage(bob, "sent while Alice was away").locator(".msg-status")).toHaveText("Sent");

    alice = await openBrowser();
    await expect(alice.getByText("Signed in as alice@localhost")).toBeVisible();
    await expect(alice.getByRole("textbox", { name: "Username" })).toBeHidden();
    await expectOnline(alice);
    await openConversation(alice, "bob@localhost");
    await expectChat(alice, ["written before closing", "reply before closing", "sent while Alice was away"]);
    await expect(ownMessage(bob, "sent while Alice was away").locator(".msg-status")).toHaveText(DELIVERED);
    expect(problems).toEqual([]);
  } finally {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
  }
});
