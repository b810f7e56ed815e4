// Message requests, blocking and contacts. A conversation started by someone who is not a
// contact waits under Message requests (Accept, Delete, Block — the last two asked first)
// instead of the conversation list; what a blocked person sends reaches none of the blocker's
// devices, which the node's database shows; contacts are exported to a JSON file and imported
// elsewhere.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test, expect } from "../support/stack.js";
import {
  DOMAIN,
  composer,
  conversationEntry,
  conversations,
  createAccount,
  expectChat,
  expectOnline,
  openConversation,
  ownMessage,
  requestEntry,
  send,
  startChat,
  systemEntries,
} from "../support/app.js";

const requests = (page) => page.getByRole("list", { name: "Message requests" });

/** Runs `sql` on the node's SQLite database (the stack's one node keeps it in its data directory). */
function nodeQuery(stack, sql) {
  const db = path.join(stack.dir, "node", "qpq.sqlite");
  expect(existsSync(db), `the node's database at ${db}`).toBe(true);
  return Number(execFileSync("/usr/bin/sqlite3", [db, sql], { encoding: "utf8" }).trim());
}

/** Where the delivery queue of `user`'s device stands (the last sequence number given out). */
function queueMark(stack, user) {
  return nodeQuery(stack, `SELECT MIN(last_seq) FROM devices WHERE user_name = '${user}'`);
}

/** How many application messages (envelope kind 0) were queued for `user`'s devices after `mark`. */
function applicationMessagesSince(stack, user, mark) {
  return nodeQuery(stack, `SELECT COUNT(*) FROM envelopes e JOIN devices d ON d.id = e.device WHERE d.user_name = '${user}' AND e.kind = 0 AND e.seq > ${mark}`);
}

/**
 * Closes `page` (its person goes offline: whatever reaches their devices stays queued on the
 * node), runs `meanwhile`, and opens the app again in the same browser profile.
 */
async function whileOffline(page, appUrl, meanwhile) {
  const context = page.context();
  await page.close();
  await meanwhile();
  const again = await context.newPage();
  await again.goto(appUrl);
  await expectOnline(again);
  return again;
}

/** Opens the Contacts dialog from the sidebar. */
async function openContacts(page) {
  await page.getByRole("button", { name: "Contacts", exact: true }).click();
  return page.getByRole("dialog", { name: "Contacts" });
}

test("a stranger's message waits as a request; once blocked their messages reach no device, once unblocked they do", async ({
  stack,
  appUrl,
  newPerson,
}) => {
  let alice = await newPerson();
  const carol = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(carol, "carol");
  const carolName = `carol@${DOMAIN}`;

  const first = "<img src=x onerror=window.__pwned=1> Hi Alice, it's Carol";
  await startChat(carol, "alice");
  await send(carol, first);

  // It waits under Message requests, the first message shown as text; the conversation list stays empty.
  const request = requestEntry(alice, carolName);
  await expect(request.locator(".request-first")).toHaveText(first);
  expect(await request.locator(".request-first").evaluate((e) => e.childElementCount)).toBe(0);
  expect(await alice.evaluate(() => window.__pwned)).toBeUndefined();
  await expect(conversations(alice).getByRole("listitem")).toHaveCount(0);

  // Opened, it is read-only until accepted.
  await request.getByRole("button", { name: new RegExp(`^${carolName}`) }).click();
  await expectChat(alice, [first]);
  await expect(composer(alice)).toBeDisabled();

  // Block asks first, saying what it does; Cancel leaves the request as it was, and no one blocked.
  await request.getByRole("button", { name: "Block", exact: true }).click();
  let asked = alice.getByRole("dialog", { name: `Block ${carolName}?` });
  await expect(asked).toContainText("Their messages will not reach any of your devices");
  await expect(asked).toContainText("They are not told.");
  await asked.getByRole("button", { name: "Cancel" }).click();
  await expect(asked).toHaveCount(0);
  await expect(request.locator(".request-first")).toHaveText(first);
  await expect(composer(alice)).toBeDisabled();
  let contacts = await openContacts(alice);
  await expect(contacts.getByRole("list", { name: "Blocked people" }).getByRole("listitem")).toHaveCount(0);
  await contacts.getByRole("button", { name: "Close" }).click();

  // Blocked once confirmed: the request is put away, and Carol is listed as blocked.
  await request.getByRole("button", { name: "Block", exact: true }).click();
  asked = alice.getByRole("dialog", { name: `Block ${carolName}?` });
  await asked.getByRole("button", { name: "Block", exact: true }).click();
  await expect(asked).toHaveCount(0);
  await expect(requests(alice)).toBeHidden();
  await expect(alice.getByRole("log", { name: "Messages" })).toBeHidden();
  contacts = await openContacts(alice);
  await expect(contacts.getByRole("list", { name: "Blocked people" }).getByRole("listitem")).toHaveText([new RegExp(`^${carolName}`)]);
  await contacts.getByRole("button", { name: "Close" }).click();

  // What Carol sends now is queued for no device of Alice's: the node shows none, and the app
  // has nothing from her when it comes back.
  alice = await whileOffline(alice, appUrl, async () => {
    const mark = queueMark(stack, `alice@${DOMAIN}`);
    await send(carol, "Are you there?");
    await expect(ownMessage(carol, "Are you there?").locator(".msg-status")).toHaveText("Sent");
    expect(applicationMessagesSince(stack, `alice@${DOMAIN}`, mark)).toBe(0);
  });
  await expect(requests(alice)).toBeHidden();
  await expect(conversations(alice).getByRole("listitem")).toHaveCount(0);

  // Unblocked, Carol's next message brings the request back, without what she sent meanwhile.
  contacts = await openContacts(alice);
  await contacts.getByRole("button", { name: `Unblock ${carolName}` }).click();
  await expect(contacts.getByRole("list", { name: "Blocked people" }).getByRole("listitem")).toHaveCount(0);
  await contacts.getByRole("button", { name: "Close" }).click();
  await send(carol, "Hello again");
  await requestEntry(alice, carolName).getByRole("button", { name: new RegExp(`^${carolName}`) }).click();
  await expectChat(alice, [first, "Hello again"]);
  await expect(conversations(alice).getByRole("listitem")).toHaveCount(0);
});

test("a deleted request goes, an accepted one becomes a conversation and its sender a contact; Block in chat info; contacts export and import", async ({
  stack,
  appUrl,
  newPerson,
}, testInfo) => {
  let alice = await newPerson();
  const bob = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  const bobName = `bob@${DOMAIN}`;

  const dan = await newPerson();
  await createAccount(dan, "dan");
  const danName = `dan@${DOMAIN}`;

  await startChat(bob, "alice");
  await send(bob, "Hello from Bob");
  await startChat(dan, "alice");
  await send(dan, "Buy now!");
  // Dan's request is deleted, Bob's accepted: only Bob's becomes a conversation. Delete asks
  // first; Cancel keeps the request, confirmed it goes, and Dan sees only that Alice left.
  await requestEntry(alice, danName).getByRole("button", { name: "Delete", exact: true }).click();
  let asked = alice.getByRole("dialog", { name: "Delete this request?" });
  await expect(asked).toContainText(`${danName} sees only that you left it.`);
  await asked.getByRole("button", { name: "Cancel" }).click();
  await expect(asked).toHaveCount(0);
  await expect(requestEntry(alice, danName)).toContainText("Buy now!");
  await requestEntry(alice, danName).getByRole("button", { name: "Delete", exact: true }).click();
  asked = alice.getByRole("dialog", { name: "Delete this request?" });
  await asked.getByRole("button", { name: "Delete request" }).click();
  await expect(requestEntry(alice, danName)).toHaveCount(0);
  await expect(systemEntries(dan).filter({ hasText: "left" })).toHaveCount(1);
  await requestEntry(alice, bobName).getByRole("button", { name: "Accept", exact: true }).click();
  await expect(requests(alice)).toBeHidden();
  await expect(conversationEntry(alice, bobName)).toContainText("Hello from Bob");
  await expect(conversations(alice).getByRole("listitem")).toHaveCount(1);

  const contacts = await openContacts(alice);
  await expect(contacts.getByRole("list", { name: "Contacts" }).getByRole("listitem")).toHaveText([new RegExp(`^${bobName}`)]);
  // Someone who does not exist is refused in words.
  await contacts.getByRole("textbox", { name: "Add a contact" }).fill("nobody");
  await contacts.getByRole("button", { name: "Add", exact: true }).click();
  await expect(contacts.getByRole("alert")).toHaveText(/^[A-Z].*[.!]$/);
  await expect(contacts.getByRole("list", { name: "Contacts" }).getByRole("listitem")).toHaveCount(1);
  const file = testInfo.outputPath("contacts.json");
  const saving = alice.waitForEvent("download");
  await contacts.getByRole("button", { name: "Export" }).click();
  await (await saving).saveAs(file);
  expect(JSON.stringify(JSON.parse(await readFile(file, "utf8")))).toContain(bobName);
  await contacts.getByRole("button", { name: "Close" }).click();

  // Block from the chat's info: the chat says so, and what Bob sends reaches no device of Alice's.
  await openConversation(alice, bobName);
  await alice.getByRole("button", { name: "Chat info" }).click();
  let info = alice.getByRole("dialog", { name: `Chat with ${bobName}` });
  // Block asks first: Cancel leaves Bob unblocked, confirmed he is blocked.
  await info.getByRole("button", { name: "Block", exact: true }).click();
  asked = alice.getByRole("dialog", { name: `Block ${bobName}?` });
  await expect(asked).toContainText("You can unblock them here in Chat info");
  await asked.getByRole("button", { name: "Cancel" }).click();
  await expect(asked).toBeHidden();
  await expect(info.getByRole("button", { name: "Block", exact: true })).toBeVisible();
  await expect(info.getByRole("button", { name: "Unblock", exact: true })).toBeHidden();
  await info.getByRole("button", { name: "Block", exact: true }).click();
  await asked.getByRole("button", { name: "Block", exact: true }).click();
  await expect(asked).toBeHidden();
  await expect(info.getByRole("button", { name: "Unblock", exact: true })).toBeVisible();
  await info.getByRole("button", { name: "Close" }).click();
  await expect(alice.getByRole("region", { name: "About this chat" })).toContainText(`You blocked ${bobName}`);
  await expect(composer(alice)).toBeDisabled();
  alice = await whileOffline(alice, appUrl, async () => {
    const mark = queueMark(stack, `alice@${DOMAIN}`);
    await send(bob, "Can you hear me?");
    await expect(ownMessage(bob, "Can you hear me?").locator(".msg-status")).toHaveText("Sent");
    expect(applicationMessagesSince(stack, `alice@${DOMAIN}`, mark)).toBe(0);
  });
  await openConversation(alice, bobName);
  await expectChat(alice, ["Hello from Bob"]);

  // Unblocked, Bob's next message arrives.
  await alice.getByRole("button", { name: "Chat info" }).click();
  info = alice.getByRole("dialog", { name: `Chat with ${bobName}` });
  await info.getByRole("button", { name: "Unblock", exact: true }).click();
  await expect(info.getByRole("button", { name: "Block", exact: true })).toBeVisible();
  await info.getByRole("button", { name: "Close" }).click();
  await expect(composer(alice)).toBeEnabled();
  await send(bob, "And now?");
  await expectChat(alice, ["Hello from Bob", "And now?"]);

  // The exported file gives another account the same contacts.
  const dansContacts = await openContacts(dan);
  await expect(dansContacts.getByRole("list", { name: "Contacts" }).getByRole("listitem").filter({ hasText: bobName })).toHaveCount(0);
  await dansContacts.getByLabel("Import").setInputFiles(file);
  await expect(dansContacts.getByRole("status")).toHaveText("Added 1 contact.");
  await expect(dansContacts.getByRole("list", { name: "Contacts" }).getByRole("listitem").filter({ hasText: bobName })).toHaveCount(1);
});
