import { test, expect } from "../support/stack.js";
import {
  DELIVERED,
  chatTexts,
  composer,
  createGroup,
  conversationEntry,
  createAccount,
  expectChat,
  openConversation,
  ownMessage,
  send,
  startChat,
} from "../support/app.js";

test("Alice and Bob create accounts, chat both ways, and Alice sees her message delivered", async ({ stack, newPerson }) => {
  const alice = await newPerson();
  const bob = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");

  await startChat(alice, "bob");
  await send(alice, "Hello Bob!");
  await expect(ownMessage(alice, "Hello Bob!")).toBeVisible();

  // Bob does not know Alice: her chat waits in Message requests, with her first message.
  const request = bob.getByRole("list", { name: "Message requests" }).getByRole("listitem");
  await expect(request).toContainText("alice@localhost");
  await expect(request).toContainText("Hello Bob!");
  await request.getByRole("button", { name: "Accept", exact: true }).click();
  // Accepted, his list shows the chat with a preview and one unread message.
  const entry = conversationEntry(bob, "alice@localhost");
  await expect(entry).toContainText("Hello Bob!");
  await expect(entry).toContainText("1 unread message");
  await openConversation(bob, "alice@localhost");
  await expectChat(bob, ["Hello Bob!"]);
  // Shown means read.
  await expect(entry).not.toContainText("unread");

  await send(bob, "Hi Alice,\nhow are you?");
  await expectChat(alice, ["Hello Bob!", "Hi Alice,\nhow are you?"]);
  await expectChat(bob, ["Hello Bob!", "Hi Alice,\nhow are you?"]);

  await expect(ownMessage(alice, "Hello Bob!").locator(".msg-status")).toHaveText(DELIVERED);
  await expect(ownMessage(bob, "Hi Alice,\nhow are you?").locator(".msg-status")).toHaveText(DELIVERED);

  // Shift+Enter makes a new line instead of sending.
  await composer(alice).fill("line one");
  await composer(alice).press("Shift+Enter");
  await composer(alice).pressSequentially("line two");
  await expect(composer(alice)).toHaveValue("line one\nline two");
  await composer(alice).press("Enter");
  const texts = ["Hello Bob!", "Hi Alice,\nhow are you?", "line one\nline two"];
  await expectChat(bob, texts);
  expect(await chatTexts(bob)).toEqual(texts);

  // Starting the chat again reopens it rather than making another.
  await startChat(bob, "alice");
  const bobsList = bob.getByRole("list", { name: "Conversations" }).getByRole("button");
  await expect(bobsList).toHaveCount(1);

  // The most recently active conversation comes first.
  await createGroup(alice, "Book club", ["bob"]);
  await send(alice, "First book?");
  await expect(bobsList).toHaveText([/^Book club.*alice: First book\?.*1 unread message$/, /^alice@localhost/]);
  await openConversation(alice, "bob@localhost");
  await send(alice, "back to us");
  await expect(bobsList).toHaveText([/^alice@localhost.*back to us/, /^Book club/]);
});
