import { test, expect } from "../support/stack.js";
import {
  acceptRequest,
  composer,
  createAccount,
  createGroup,
  expectChat,
  messageLog,
  openConversation,
  send,
  startChat,
  systemEntries,
} from "../support/app.js";

/** The chat row whose own text is exactly `text` (not a reply quoting it). */
function row(page, text) {
  return messageLog(page)
    .locator(".msg:not(.system)")
    .filter({ has: page.locator(".msg-body").getByText(text, { exact: true }) });
}

/** Opens a message's menu and presses one of its items. */
async function messageAction(page, text, item) {
  const r = row(page, text);
  await r.getByRole("button", { name: "Message actions" }).click();
  await r.getByRole("button", { name: item, exact: true }).click();
}

test("reactions, replies, edits and deletes, and read receipts in a direct chat", async ({ stack, newPerson }) => {
  const [alice, bob] = [await newPerson(), await newPerson()];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "Lunch at noon?");
  await openConversation(bob, "alice@localhost");
  await expectChat(bob, ["Lunch at noon?"]);
  // Bob has it open: Alice sees it read.
  await expect(row(alice, "Lunch at noon?").locator(".msg-status")).toHaveText("Read");

  // Bob reacts; Alice sees who.
  await messageAction(bob, "Lunch at noon?", "React");
  await row(bob, "Lunch at noon?").getByRole("button", { name: "React with 👍" }).click();
  await expect(row(alice, "Lunch at noon?").getByRole("button", { name: "👍 1: bob@localhost" })).toBeVisible();
  // Alice adds the same; the count is 2; pressing hers again takes it back.
  await row(alice, "Lunch at noon?").getByRole("button", { name: /^👍 1/ }).click();
  await expect(row(bob, "Lunch at noon?").getByRole("button", { name: /^👍 2/ })).toBeVisible();
  await row(alice, "Lunch at noon?").getByRole("button", { name: /^👍 2/ }).click();
  await expect(row(bob, "Lunch at noon?").getByRole("button", { name: "👍 1: bob@localhost" })).toBeVisible();

  // Someone else's message offers no Edit or Delete.
  await row(bob, "Lunch at noon?").getByRole("button", { name: "Message actions" }).click();
  await expect(row(bob, "Lunch at noon?").getByRole("button", { name: "Reply", exact: true })).toBeVisible();
  await expect(row(bob, "Lunch at noon?").getByRole("button", { name: "Edit", exact: true })).toHaveCount(0);
  await expect(row(bob, "Lunch at noon?").getByRole("button", { name: "Delete", exact: true })).toHaveCount(0);

  // Bob replies quoting it.
  await row(bob, "Lunch at noon?").getByRole("button", { name: "Reply", exact: true }).click();
  await expect(bob.getByText("Replying to alice@localhost: Lunch at noon?")).toBeVisible();
  await send(bob, "Yes, see you there");
  const reply = row(alice, "Yes, see you there");
  await expect(reply.locator(".msg-quote")).toContainText("Lunch at noon?");
  await expect(reply.locator(".quote-sender")).toHaveText("alice@localhost");

  // Alice edits her message: Bob sees the new text marked "edited".
  await messageAction(alice, "Lunch at noon?", "Edit");
  await expect(composer(alice)).toHaveValue("Lunch at noon?");
  await composer(alice).fill("Lunch at one?");
  await composer(alice).press("Enter");
  await expect(row(bob, "Lunch at one?").locator(".msg-edited")).toHaveText("edited");
  await expectChat(bob, ["Lunch at one?", "Yes, see you there"]);

  // …then deletes it for everyone, after saying yes to a question that quotes it (Cancel
  // first: nothing happens); the reply's quote says so too.
  await messageAction(alice, "Lunch at one?", "Delete");
  const ask = alice.getByRole("dialog", { name: "Delete this message?" });
  await expect(ask.locator(".msg-quote")).toHaveText("Lunch at one?");
  await ask.getByRole("button", { name: "Cancel" }).click();
  await expect(ask).toBeHidden();
  await expectChat(bob, ["Lunch at one?", "Yes, see you there"]);
  await messageAction(alice, "Lunch at one?", "Delete");
  await ask.getByRole("button", { name: "Delete for everyone" }).click();
  await expect(ask).toBeHidden();
  await expectChat(bob, ["Message deleted", "Yes, see you there"]);
  await expectChat(alice, ["Message deleted", "Yes, see you there"]);
  await expect(row(bob, "Yes, see you there").locator(".quote-text")).toHaveText("Message deleted");
  await expect(row(bob, "Message deleted").getByRole("button", { name: "Message actions" })).toHaveCount(0);

  // Still so after a reload (stored, not only drawn).
  await bob.reload();
  await openConversation(bob, "alice@localhost");
  await expectChat(bob, ["Message deleted", "Yes, see you there"]);
});

test("typing indicator and group read receipts with who read", async ({ stack, newPerson }) => {
  const [alice, bob, carol] = [await newPerson(), await newPerson(), await newPerson()];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await createAccount(carol, "carol");
  await createGroup(alice, "Book club", ["bob", "carol"]);
  await send(alice, "Chapter 3 tonight");
  // Alice is no contact of theirs: until Carol accepts the group, nothing of hers goes back.
  await acceptRequest(carol, "Book club");
  await openConversation(bob, "Book club");
  await expectChat(bob, ["Chapter 3 tonight"]);
  const status = row(alice, "Chapter 3 tonight").locator(".msg-status");
  await expect(status).toHaveText("Read by 1");
  await expect(status).toHaveAttribute("title", /Read by bob@localhost/);
  await openConversation(carol, "Book club");
  await expect(status).toHaveText("Read by 2");
  await expect(status).toHaveAttribute("title", /Read by (bob@localhost, carol@localhost|carol@localhost, bob@localhost)/);

  // Bob types: Alice and Carol see it; it ends when he clears the box.
  await composer(bob).pressSequentially("I haven't fin");
  await expect(alice.getByText("bob is typing…")).toBeVisible();
  await expect(carol.getByText("bob is typing…")).toBeVisible();
  await composer(bob).fill("");
  await composer(bob).press("Backspace");
  await expect(alice.getByText("bob is typing…")).toHaveCount(0);
  // Sending also ends it.
  await composer(carol).pressSequentially("Me neither");
  await expect(alice.getByText("carol is typing…")).toBeVisible();
  await composer(carol).press("Enter");
  await expectChat(alice, ["Chapter 3 tonight", "Me neither"]);
  await expect(alice.getByText("carol is typing…")).toHaveCount(0);
});

test("group info: a member made admin sets a disappearing timer, messages vanish everywhere, another leaves", async ({ stack, newPerson }) => {
  test.setTimeout(120_000);
  const [alice, bob, carol] = [await newPerson(), await newPerson(), await newPerson()];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await createAccount(carol, "carol");
  await createGroup(alice, "Secrets", ["bob", "carol"]);
  await send(alice, "This one stays");
  await openConversation(bob, "Secrets");
  await openConversation(carol, "Secrets");
  await expectChat(bob, ["This one stays"]);
  // Only admins change the timer: Alice, the creator, makes Bob one.
  await alice.getByRole("button", { name: "Members" }).click();
  const panel = alice.getByRole("complementary", { name: "Members" });
  await panel.getByRole("listitem").filter({ hasText: "bob@localhost" }).getByRole("combobox", { name: "Role" }).selectOption({ label: "Admin" });
  await expect(systemEntries(bob).last()).toContainText("alice@localhost made you an admin");

  await bob.getByRole("button", { name: "Group info" }).click();
  const info = bob.getByRole("dialog", { name: "Secrets" });
  await expect(info.getByText("Created by alice@localhost")).toBeVisible();
  await expect(info.getByRole("list", { name: "Members of this conversation" }).locator(".member-name")).toHaveText([
    "alice@localhost",
    "bob@localhost (you)",
    "carol@localhost",
  ]);
  await info.getByRole("combobox", { name: "Disappearing messages" }).selectOption({ label: "30 seconds" });
  for (const [p, who] of [[alice, "bob@localhost"], [bob, "You"], [carol, "bob@localhost"]]) {
    await expect(systemEntries(p).last()).toContainText(`${who} set disappearing messages to 30 seconds`);
  }
  await info.getByRole("button", { name: "Close" }).click();

  await send(alice, "Gone in 30 seconds");
  for (const p of [alice, bob, carol]) await expectChat(p, ["This one stays", "Gone in 30 seconds"]);
  await expect(row(bob, "Gone in 30 seconds").getByLabel(/^Disappears at/)).toBeVisible();
  for (const p of [alice, bob, carol]) await expectChat(p, ["This one stays"], { timeout: 45_000 });
  // Gone from this browser's storage too.
  await bob.reload();
  await openConversation(bob, "Secrets");
  await expect(systemEntries(bob).last()).toBeVisible();
  await expectChat(bob, ["This one stays"]);

  // Carol leaves the group.
  await carol.getByRole("button", { name: "Group info" }).click();
  await carol.getByRole("dialog", { name: "Secrets" }).getByRole("button", { name: "Leave group" }).click();
  await expect(composer(carol)).toBeDisabled();
  await expect(systemEntries(alice).filter({ hasText: "carol@localhost left" })).toHaveCount(1);
  await expect(systemEntries(bob).filter({ hasText: "carol@localhost left" })).toHaveCount(1);
  await expect(alice.getByText("Group · 2 members")).toBeVisible();
  await send(bob, "Just us now");
  await expectChat(alice, ["This one stays", "Just us now"]);
});

test("deleting an account asks first, then contacts see it deleted", async ({ stack, newPerson }) => {
  const [alice, bob] = [await newPerson(), await newPerson()];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "Are you leaving?");
  await openConversation(bob, "alice@localhost");
  await expectChat(bob, ["Are you leaving?"]);

  await bob.getByRole("button", { name: "Delete account" }).click();
  const confirm = bob.getByRole("dialog", { name: "Delete your account?" });
  await expect(confirm).toBeVisible();
  // Cancel keeps everything.
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await expect(confirm).toBeHidden();
  await bob.getByRole("button", { name: "Delete account" }).click();
  await confirm.getByRole("button", { name: "Delete account" }).click();
  // The browser starts over at sign-up.
  await expect(bob.getByRole("button", { name: "Create account" })).toBeVisible({ timeout: 20_000 });

  await expect(systemEntries(alice).filter({ hasText: "bob@localhost deleted their account" })).toHaveCount(1);
});
