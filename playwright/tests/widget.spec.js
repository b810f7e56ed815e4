// The embeddable widget on someone else's site: a host page served by a tiny server of its own
// (another origin, and another site: localhost, where the gateway is 127.0.0.1) adds
// <script src="…/embed.js" data-peer="bob@localhost">. Nothing of the engine loads before the
// visitor presses **Open chat**; then the chat runs in an iframe of the gateway's origin,
// which --frame-ancestors lets this host (and no other) frame. The visitor signs up inside it —
// an account of this site's storage partition — and chats with Bob, who uses the full app; with
// the widget closed, the host page hears of Bob's next message through the element's `unread`
// event. The heading names Bob by the display name he shares, as text. A message request from
// Carol is only counted in the widget, which shows its one chat: framed, the account is the
// shop's, which the app cannot open; in a tab of its own, the line links to the app, where the
// request waits. The visitor's browser allows third-party site data (a setting of its
// profile); Chromium's default blocks it, and there the widget offers the chat in a tab of its
// own. A host that --frame-ancestors does not name gets no frame at all.

import { rm } from "node:fs/promises";
import http from "node:http";
import { chromium } from "@playwright/test";
import { CHROMIUM_LAUNCH, profileAllowingThirdPartyStorage } from "../support/chromium.js";
import { engineWorkerLoadedEngine, engineWorkerRuns } from "../support/engine-worker.js";
import {
  DOMAIN,
  createAccount,
  expectChat,
  openConversation,
  ownMessage,
  requestEntry,
  send,
  startChat,
} from "../support/app.js";
import { BASE_URL, GATEWAY_PORT, expect, test, watchForPageProblems } from "../support/stack.js";

const HOST_PORT = GATEWAY_PORT + 30;
/** The embedding site: another host name than the gateway's, so storage is partitioned. */
const HOST_ORIGIN = `http://localhost:${HOST_PORT}`;
/** The same page at another origin, which --frame-ancestors does not name. */
const REFUSED_ORIGIN = `http://127.0.0.1:${HOST_PORT}`;
const PEER = `bob@${DOMAIN}`;
/** Bob's display name: markup in it must stay text. */
const BOB_NAME = "Bob <b>at</b> the shop";

test.use({ gatewayArgs: ["--frame-ancestors", HOST_ORIGIN] });

/** A shop's page with the widget, as the README's snippet puts it (`label`: its data-label). */
const hostPage = (label) => `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>A shop</title>
<h1>A shop</h1><p>Questions? Ask us.</p>
<script src="${BASE_URL}/embed.js" data-peer="${PEER}"${label ? ` data-label="${label}"` : ""} async></script>
</html>`;

/** Serves the host page at / (`/?label=Ask+us` names the button) on 127.0.0.1 (localhost too). */
async function hostServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, HOST_ORIGIN);
    if (url.pathname !== "/") return res.writeHead(404).end();
    const label = url.searchParams.get("label")?.replace(/[^\w ]/g, "");
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(hostPage(label));
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(HOST_PORT, "127.0.0.1", resolve));
  return server;
}

const widget = (page) => page.locator("qpq-chat");
const widgetFrame = (page) => widget(page).locator("iframe").contentFrame();

test("the widget on another site loads the engine only when opened, chats with Bob by his name, counts others' requests and reports unread messages", async ({
  stack,
  newPerson,
  browser,
}) => {
  // The engine loads in five pages here (the widget, Bob's, Carol's, and another browser's tab and app).
  test.setTimeout(240_000);
  const server = await hostServer();
  const profile = await profileAllowingThirdPartyStorage();
  const visitor = await chromium.launchPersistentContext(profile, { ...CHROMIUM_LAUNCH, headless: true });
  const problems = [];
  watchForPageProblems(visitor, problems);
  try {
    const bob = await newPerson();
    await createAccount(bob, "bob");

    // The visitor opens the shop's page; every request of the page and its frames is recorded.
    const requests = [];
    visitor.on("request", (r) => requests.push(r.url()));
    const shop = await visitor.newPage();
    await shop.goto(`${HOST_ORIGIN}/`);
    const open = shop.getByRole("button", { name: "Open chat" });
    await expect(open).toBeVisible();
    await expect(open).toHaveAttribute("aria-expanded", "false");
    // Give anything that would load eagerly a moment to show itself.
    await shop.waitForLoadState("networkidle");
    expect(requests.filter((u) => u.startsWith(BASE_URL)).map((u) => new URL(u).pathname)).toEqual(["/embed.js"]);
    expect(await engineWorkerRuns(shop), "no engine runs before the chat opens").toBe(false);

    await open.click();
    const chat = widgetFrame(shop);
    await chat.getByRole("textbox", { name: "Username" }).fill("alice");
    await chat.getByRole("button", { name: "Create account" }).click();
    // Bob shared no profile yet: the heading names him by his address.
    await expect(chat.getByRole("heading", { name: `Chat with ${PEER}` })).toBeVisible();
    // Who the visitor is, and that this is the shop's account.
    await expect(chat.getByText(`You are alice@${DOMAIN} on ${HOST_ORIGIN}.`)).toBeVisible();
    // The engine runs in the widget's SharedWorker, whose requests the page's list does not show.
    expect(await engineWorkerLoadedEngine(shop), "the engine loads once the chat is open").toBe(true);

    await send(chat, "Hello from the shop");
    await openConversation(bob, `alice@${DOMAIN}`);
    await expectChat(bob, ["Hello from the shop"]);
    // Bob shares a display name; his card follows his next message.
    await bob.getByRole("button", { name: "Edit profile" }).click();
    const editProfile = bob.getByRole("dialog", { name: "Edit profile" });
    await editProfile.getByRole("textbox", { name: "Display name" }).fill(BOB_NAME);
    await editProfile.getByRole("button", { name: "Save" }).click();
    await expect(editProfile).toBeHidden();
    await send(bob, "Hi! How can I help?");
    await expectChat(chat, ["Hello from the shop", "Hi! How can I help?"]);
    // Shown in the open widget means read.
    await expect(ownMessage(bob, "Hi! How can I help?").locator(".msg-status")).toHaveText("Read");

    // The heading now names Bob by his display name (as text: no element made of its markup),
    // his address beside it.
    const heading = chat.getByRole("heading", { level: 1 });
    await expect(heading).toHaveText(`Chat with ${BOB_NAME}`);
    expect(await heading.evaluate((e) => e.childElementCount)).toBe(0);
    await expect(chat.locator("#embed-peer")).toHaveText(PEER);

    // Carol, whom the visitor does not know, writes to them: the widget shows only its chat
    // with Bob, and says that requests came. Framed, its account is the shop's, which the app
    // at our address cannot open: the line links nowhere.
    const carol = await newPerson();
    await createAccount(carol, "carol");
    await startChat(carol, "alice");
    await send(carol, "Hello, it's Carol");
    const requestsLine = chat.getByRole("status").filter({ hasText: "message request" });
    await expect(requestsLine).toHaveText(`1 message request from other people; this chat shows only ${BOB_NAME}.`);
    await expect(requestsLine.getByRole("link")).toHaveCount(0);
    await expect(chat.getByText("Hello, it's Carol")).toHaveCount(0);
    await expectChat(chat, ["Hello from the shop", "Hi! How can I help?"]);

    // Closed, the widget still receives; the host page hears the count through the element.
    await widget(shop).evaluate((el) => {
      window.unreadCounts = [];
      el.addEventListener("unread", (e) => window.unreadCounts.push(e.detail.count));
    });
    await shop.getByRole("button", { name: "Close chat" }).click();
    await expect(open).toHaveAttribute("aria-expanded", "false");
    await send(bob, "Are you still there?");
    await expect.poll(() => shop.evaluate(() => window.unreadCounts)).toEqual([1]);
    expect(await widget(shop).evaluate((el) => el.unread)).toBe(1);
    await expect(shop.getByRole("status").filter({ hasText: "1 unread message" })).toBeAttached();

    // Opened again, by the host page this time: the message shows, is read, and the count
    // goes back to 0.
    await widget(shop).evaluate((el) => el.open());
    await expect(open).toHaveAttribute("aria-expanded", "true");
    await expectChat(chat, ["Hello from the shop", "Hi! How can I help?", "Are you still there?"]);
    await expect.poll(() => shop.evaluate(() => window.unreadCounts)).toEqual([1, 0]);

    expect(problems, "uncaught errors or CSP violations in the host page or the widget").toEqual([]);

    // Chromium as it comes blocks site data in frames of other sites: the widget says so and
    // offers the chat in a tab of its own. (This page names its button with data-label.)
    const other = await browser.newContext();
    try {
      const blocked = await other.newPage();
      await blocked.goto(`${HOST_ORIGIN}/?label=Ask+us`);
      await blocked.getByRole("button", { name: "Ask us", exact: true }).click();
      const frame = widgetFrame(blocked);
      await expect(frame.getByRole("heading", { name: "This browser keeps the chat from storing anything here" })).toBeVisible();
      const newTab = frame.getByRole("link", { name: "Open the chat in a new tab" });
      await expect(newTab).toHaveAttribute("href", `${BASE_URL}/embed.html?peer=${encodeURIComponent(PEER)}`);
      // Not embedded, the chat may store its data: it asks for a name.
      const [tab] = await Promise.all([other.waitForEvent("page"), newTab.click()]);
      await expect(tab.getByRole("heading", { name: `Chat with ${PEER}` })).toBeVisible();
      await expect(tab.getByRole("textbox", { name: "Username" })).toBeVisible();

      // In a tab of its own the chat's account is the app's: a request from Carol is counted
      // with a link to the app, which lists it (the app's tab uses the chat tab's engine).
      await tab.getByRole("textbox", { name: "Username" }).fill("erin");
      await tab.getByRole("button", { name: "Create account" }).click();
      await expect(tab.getByText(`You are erin@${DOMAIN}.`)).toBeVisible();
      await startChat(carol, "erin");
      await send(carol, "Hi Erin, Carol here");
      const line = tab.getByRole("status").filter({ hasText: "message request" });
      await expect(line).toHaveText("1 message request — open quicproquo to read them");
      const appLink = line.getByRole("link", { name: "open quicproquo" });
      await expect(appLink).toHaveAttribute("href", `${BASE_URL}/`);
      const [app] = await Promise.all([other.waitForEvent("page"), appLink.click()]);
      await expect(app.getByText(`Signed in as erin@${DOMAIN}`)).toBeVisible();
      await expect(requestEntry(app, `carol@${DOMAIN}`)).toContainText("Hi Erin, Carol here");

      // The same page at an origin --frame-ancestors does not name: the browser refuses the
      // frame (this context is not watched: the refusal is reported as a CSP violation).
      const refused = await other.newPage();
      await refused.goto(`${REFUSED_ORIGIN}/`);
      await refused.getByRole("button", { name: "Open chat" }).click();
      await expect.poll(() => refused.frames().map((f) => f.url())).toContain("chrome-error://chromewebdata/");
    } finally {
      await other.close();
    }
  } finally {
    await visitor.close();
    await rm(profile, { recursive: true, force: true });
    await new Promise((resolve) => server.close(resolve));
  }
});
