import { test, expect } from "../support/stack.js";
import {
  chatTexts,
  composer,
  createAccount,
  createGroup,
  expectChat,
  openConversation,
  send,
  systemEntries,
} from "../support/app.js";

test("a group of three grows to four; the newcomer sees only later messages; a removed member sees no more", async ({
  stack,
  newPerson,
}) => {
  const [alice, bob, carol, dave] = [await newPerson(), await newPerson(), await newPerson(), await newPerson()];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await createAccount(carol, "carol");
  await createAccount(dave, "dave");

  await createGroup(alice, "Trip", ["bob", "carol@localhost"]);
  await send(alice, "Hello group");
  for (const p of [bob, carol]) {
    await openConversation(p, "Trip");
    await expectChat(p, ["Hello group"]);
  }
  await send(bob, "Hi from Bob");
  for (const p of [alice, carol]) await expectChat(p, ["Hello group", "Hi from Bob"]);

  // Alice adds Dave in the members panel.
  await alice.getByRole("button", { name: "Members" }).click();
  const panel = alice.getByRole("complementary", { name: "Members" });
  await expect(panel.getByRole("listitem")).toHaveText([/^alice@localhost \(you\)Admin/, /^bob@localhost/, /^carol@localhost/]);
  await panel.getByRole("textbox", { name: "Add people" }).fill("dave");
  await panel.getByRole("button", { name: "Add", exact: true }).click();
  await expect(systemEntries(alice).last()).toContainText("You added dave@localhost");
  await expect(systemEntries(bob).last()).toContainText("alice@localhost added dave@localhost");
  await expect(panel.getByRole("button", { name: "Remove dave@localhost" })).toBeVisible();

  await openConversation(dave, "Trip");
  await expect(systemEntries(dave).last()).toContainText("alice@localhost added you");
  await send(alice, "Welcome Dave");
  await expectChat(dave, ["Welcome Dave"]);
  await send(dave, "Thanks!");
  for (const p of [alice, bob, carol]) await expectChat(p, ["Hello group", "Hi from Bob", "Welcome Dave", "Thanks!"]);
  await expectChat(dave, ["Welcome Dave", "Thanks!"]);

  // Alice removes Carol.
  await panel.getByRole("button", { name: "Remove carol@localhost" }).click();
  await expect(panel.getByRole("button", { name: "Remove carol@localhost" })).toHaveCount(0);
  await expect(systemEntries(carol).last()).toContainText("alice@localhost removed you");
  await expect(carol.getByText("You are no longer a member of this conversation")).toBeVisible();
  await expect(composer(carol)).toBeDisabled();
  await expect(systemEntries(bob).last()).toContainText("alice@localhost removed carol@localhost");

  await send(alice, "After Carol left");
  // Bob answers what he sees: a message crossing Alice's would come first in his own history
  // (each device lists messages as they reach it).
  await expectChat(bob, ["Hello group", "Hi from Bob", "Welcome Dave", "Thanks!", "After Carol left"]);
  await send(bob, "Bye Carol");
  const after = ["Hello group", "Hi from Bob", "Welcome Dave", "Thanks!", "After Carol left", "Bye Carol"];
  await expectChat(alice, after);
  await expectChat(bob, after);
  await expectChat(dave, ["Welcome Dave", "Thanks!", "After Carol left", "Bye Carol"]);
  // Everyone else has both later messages; Carol has neither.
  expect(await chatTexts(carol)).toEqual(["Hello group", "Hi from Bob", "Welcome Dave", "Thanks!"]);
});
