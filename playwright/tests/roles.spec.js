// Group roles in the browser: the creator is the group's admin; a member is offered neither
// Remove nor a Role select nor Add people, and the timer is not theirs to change; an admin
// makes a member admin in the members panel, and that member may then remove someone. (That
// the node refuses a member's forged removal commit, and that clients never see it, is shown
// with a hostile client against a real node in e2e/tests/trust.rs.)

import { test, expect } from "../support/stack.js";
import { createAccount, createGroup, expectChat, openConversation, send, systemEntries } from "../support/app.js";

test("only admins manage a group; a member made admin may remove someone", async ({ stack, newPerson }) => {
  test.setTimeout(120_000);
  const [alice, bob, carol] = [await newPerson(), await newPerson(), await newPerson()];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await createAccount(carol, "carol");
  await createGroup(alice, "Club", ["bob", "carol"]);
  await send(alice, "Welcome to the club");
  for (const p of [bob, carol]) {
    await openConversation(p, "Club");
    await expectChat(p, ["Welcome to the club"]);
  }

  // Bob, a member: he sees who the admin is, and nothing to manage.
  await bob.getByRole("button", { name: "Members" }).click();
  const bobPanel = bob.getByRole("complementary", { name: "Members" });
  const line = (panel, user) => panel.getByRole("listitem").filter({ hasText: user });
  const adminBadge = (panel, user) => line(panel, user).locator(".badge", { hasText: "Admin" });
  await expect(adminBadge(bobPanel, "alice@localhost")).toBeVisible();
  await expect(adminBadge(bobPanel, "carol@localhost")).toHaveCount(0);
  await expect(bobPanel.getByRole("button", { name: /^Remove / })).toHaveCount(0);
  await expect(bobPanel.getByRole("combobox", { name: "Role" })).toHaveCount(0);
  await expect(bobPanel.getByRole("textbox", { name: "Add people" })).toBeHidden();
  await bob.getByRole("button", { name: "Group info" }).click();
  const info = bob.getByRole("dialog", { name: "Club" });
  await expect(info.getByRole("combobox", { name: "Disappearing messages" })).toBeDisabled();
  await expect(info.getByText("Only the group's admins change this.")).toBeVisible();
  await info.getByRole("button", { name: "Close" }).click();

  // Alice, the admin, has a Role select per member; her own cannot drop the last admin.
  await alice.getByRole("button", { name: "Members" }).click();
  const alicePanel = alice.getByRole("complementary", { name: "Members" });
  await expect(line(alicePanel, "alice@localhost").getByRole("combobox", { name: "Role" })).toBeDisabled();
  await expect(alicePanel.getByRole("button", { name: "Remove carol@localhost" })).toBeVisible();
  await line(alicePanel, "bob@localhost").getByRole("combobox", { name: "Role" }).selectOption({ label: "Admin" });

  // Bob is an admin now, everywhere, and may remove Carol.
  await expect(adminBadge(bobPanel, "bob@localhost")).toBeVisible();
  await expect(adminBadge(alicePanel, "bob@localhost")).toBeVisible();
  await bobPanel.getByRole("button", { name: "Remove carol@localhost" }).click();
  await expect(systemEntries(carol).last()).toContainText("bob@localhost removed you");
  await expect(systemEntries(alice).last()).toContainText("bob@localhost removed carol@localhost");
  await expect(alice.getByText("Group · 2 members")).toBeVisible();
  await send(bob, "Just the two of us");
  await expectChat(alice, ["Welcome to the club", "Just the two of us"]);
});
