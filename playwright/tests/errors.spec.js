import { test, expect } from "../support/stack.js";
import { createAccount } from "../support/app.js";

test("a taken name and an unknown user are explained in plain words", async ({ stack, newPerson }) => {
  const alice = await newPerson();
  await createAccount(alice, "alice");

  const impostor = await newPerson();
  await impostor.getByRole("textbox", { name: "Username" }).fill("alice");
  await impostor.getByRole("button", { name: "Create account" }).click();
  const problem = impostor.getByRole("alert").filter({ hasText: /\S/ });
  // Someone whose name it is is pointed to linking this browser instead.
  await expect(problem).toHaveText(
    "The name “alice” is already taken. Choose another name. If it is yours, choose “I already have an account”: link this browser from a device where you are signed in, or restore from your backup file.",
  );
  await expect(problem).not.toContainText("user_exists");
  // Nothing was stored: the person can pick another name.
  await createAccount(impostor, "alice2");

  await alice.getByRole("button", { name: "New chat" }).click();
  await alice.getByRole("textbox", { name: "Recipient" }).fill("nobody");
  await alice.getByRole("button", { name: "Start chat" }).click();
  const dialog = alice.getByRole("dialog", { name: "New chat" });
  await expect(dialog.getByRole("alert")).toHaveText(/^There is no user nobody@localhost\.?$/);
  await expect(dialog.getByRole("alert")).not.toContainText("no_such_user");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await expect(alice.getByRole("list", { name: "Conversations" }).getByRole("listitem")).toHaveCount(0);
});
