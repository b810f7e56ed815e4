// What a person does in the app, by the accessible names the UI gives its controls.

import { expect } from "@playwright/test";

/** The server's domain (qpq-server's default). */
export const DOMAIN = "localhost";

export const connection = (page) => page.getByRole("status", { name: "Connection" });
export const conversations = (page) => page.getByRole("list", { name: "Conversations" });
export const messageLog = (page) => page.getByRole("log", { name: "Messages" });
/** The status of a message that reached the other side: "Delivered", or "Read" once it was seen (read implies delivered). */
export const DELIVERED = /^(Delivered|Read)$/;
export const composer = (page) => page.getByRole("textbox", { name: "Message", exact: true });

/**
 * The transport the page should be online with: what its `?transport=` forces, else
 * WebTransport (the gateway in the tests offers it).
 */
export function expectedTransport(page) {
  return new URL(page.url()).searchParams.get("transport") === "websocket" ? "WebSocket" : "WebTransport";
}

/** Waits until the indicator says the page is online via the expected transport. */
export async function expectOnline(page, { transport, ...options } = {}) {
  await expect(connection(page)).toHaveText(`Online via ${transport ?? expectedTransport(page)}`, options);
}

/** Creates an account named `name` and waits until the app is online. */
export async function createAccount(page, name, options = {}) {
  await page.getByRole("textbox", { name: "Username" }).fill(name);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByText(`Signed in as ${name}@${DOMAIN}`)).toBeVisible();
  await expectOnline(page, options);
}

/**
 * Opens another tab of the browser profile of `page` (same context) at the app's address and
 * waits until it shows `name`'s app online.
 */
export async function openTab(page, name, options = {}) {
  const url = new URL(page.url());
  const tab = await page.context().newPage();
  await tab.goto(`${url.origin}${url.pathname}${url.search}`);
  await expect(tab.getByText(`Signed in as ${name}@${DOMAIN}`)).toBeVisible();
  await expectOnline(tab, options);
  return tab;
}

/** Starts (or opens) the 1:1 chat with `who` through the New chat dialog. */
export async function startChat(page, who) {
  await page.getByRole("button", { name: "New chat" }).click();
  await page.getByRole("textbox", { name: "Recipient" }).fill(who);
  await page.getByRole("button", { name: "Start chat" }).click();
  await expect(page.getByRole("heading", { level: 2, name: `${who}@${DOMAIN}` })).toBeVisible();
}

/**
 * Alice and Bob sign up, Alice writes `first` in a new 1:1 chat and Bob answers `reply`; returns
 * once Alice sees both.
 */
export async function chatOfTwo(alice, bob, first, reply) {
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, first);
  await openConversation(bob, `alice@${DOMAIN}`);
  // Bob answers what he has read: the conversation can open (its Welcome) a moment before
  // the first message shows, and a reply written in that moment would come first on his side.
  await expectChat(bob, [first]);
  await send(bob, reply);
  await expectChat(alice, [first, reply]);
}

/** Creates a group through the New group dialog. */
export async function createGroup(page, name, members) {
  await page.getByRole("button", { name: "New group" }).click();
  await page.getByRole("textbox", { name: "Group name" }).fill(name);
  await page.getByRole("textbox", { name: "Members", exact: true }).fill(members.join(", "));
  await page.getByRole("button", { name: "Create group" }).click();
  await expect(page.getByRole("heading", { level: 2, name })).toBeVisible();
}

/**
 * The entry in **Message requests** of the conversation titled `title`: a group's says
 * "Group: TITLE", a direct chat's names the person.
 */
export function requestEntry(page, title) {
  const items = page.getByRole("list", { name: "Message requests" }).getByRole("listitem");
  return items.filter({ hasText: `Group: ${title}` }).or(items.filter({ hasText: title }).filter({ hasNotText: "Group: " }));
}

/** Accepts the message request of the conversation titled `title`, as a person who expected it. */
export async function acceptRequest(page, title) {
  await requestEntry(page, title).getByRole("button", { name: "Accept", exact: true }).click();
  await expect(conversationEntry(page, title)).toBeVisible();
}

/**
 * Opens the conversation whose list entry starts with `title`. One that someone who is not a
 * contact started waits in **Message requests** first: it is accepted there.
 */
export async function openConversation(page, title) {
  const entry = conversationEntry(page, title);
  await expect(entry.or(requestEntry(page, title)).first()).toBeVisible();
  if (!(await entry.isVisible())) await acceptRequest(page, title);
  await entry.click();
  await expect(page.getByRole("heading", { level: 2, name: title })).toBeVisible();
}

/** Adds `user` (name@domain) to the contacts of the person on `page`, through Contacts. */
export async function addContact(page, user) {
  await page.getByRole("button", { name: "Contacts", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: "Contacts" });
  await dialog.getByRole("textbox", { name: "Add a contact" }).fill(user);
  await dialog.getByRole("button", { name: "Add", exact: true }).click();
  await expect(dialog.getByRole("list", { name: "Contacts" })).toContainText(user);
  await dialog.getByRole("button", { name: "Close" }).click();
}

/** The list entry (a button) of the conversation titled `title`. */
export function conversationEntry(page, title) {
  return conversations(page).getByRole("button", { name: new RegExp(`^${escapeRegExp(title)}\\b`) });
}

/** Types `text` in the composer and presses Enter. */
export async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press("Enter");
  await expect(composer(page)).toHaveValue("");
}

/** Every chat message (not system entries) in the open conversation, as a locator. */
export function chatMessages(page) {
  return messageLog(page).locator(".msg:not(.system)");
}

/** The texts of the open conversation's chat messages, oldest first. */
export async function chatTexts(page) {
  return messageLog(page)
    .locator(".msg:not(.system) .msg-body")
    .evaluateAll((bodies) => bodies.map((b) => b.textContent));
}

/** The system entries of the open conversation. */
export function systemEntries(page) {
  return messageLog(page).locator(".msg.system");
}

/** The row of my message `text` (exact). */
export function ownMessage(page, text) {
  return messageLog(page).locator(".msg.outgoing").filter({ has: page.getByText(text, { exact: true }) });
}

/** Waits until the open conversation shows exactly `texts` as its chat messages. */
export async function expectChat(page, texts, options = {}) {
  await expect(messageLog(page).locator(".msg:not(.system) .msg-body")).toHaveText(texts, options);
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const CODE = /^[0-9A-Z]{4}(-[0-9A-Z]{4}){5}$/;

/** On a signed-in page: Devices → Link a device; returns the code shown. */
export async function showLinkCode(page) {
  const dialog = page.getByRole("dialog", { name: "Your devices" });
  if (!(await dialog.isVisible())) await page.getByRole("button", { name: "Devices" }).click();
  await dialog.getByRole("button", { name: "Link a device" }).click();
  const code = dialog.getByRole("region", { name: "Link code" }).locator(".link-code");
  await expect(code).toHaveText(CODE);
  return code.textContent();
}

/** On a new browser's sign-up screen: I already have an account → Link code → Link. */
export async function typeLinkCode(page, code) {
  await page.getByRole("button", { name: "I already have an account" }).click();
  await page.getByRole("textbox", { name: "Link code" }).fill(code);
  await page.getByRole("button", { name: "Link", exact: true }).click();
}
