// Web Push end to end: Bob enables notifications, closes his tabs, Alice writes; the node
// pushes (a padded, encrypted "wake" that the local push service checks and decrypts), the
// push is handed to Bob's service worker through CDP, and the worker fetches, decrypts and
// shows Alice's message — nothing for the conversation Bob muted, and in the one set to
// Mentions only the message that names him.
//
// Headless Chromium has no push service, so PushManager.subscribe is answered with a
// subscription of the local push service (support/push-service.js) — the browser vendor's
// part is the only thing stood in for; the app's own code path (button, permission, VAPID
// key, subscribe, registration with the server) runs as it would for a person. In the first
// test Bob's notifications go to a desktop notification server (support/desktop.js), where
// they are clicked as a person clicks them.

import { rm } from "node:fs/promises";
import { test, expect } from "../support/stack.js";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import { startDesktop } from "../support/desktop.js";
import { closeTheApp, pushableBrowser, shownNotifications, startPushService } from "../support/push-service.js";
import { chatOfTwo, createAccount, createGroup, expectChat, openConversation, send, startChat } from "../support/app.js";

test.use({ nodeArgs: ["--push-allow-http", "--push-delay-ms", "500"] });

/** Bob's browser: able to receive pushes (support/push-service.js), with the app open. */
async function bobsBrowser(stack, push, prefix, appUrl, launch = CHROMIUM_LAUNCH) {
  const { page: bob, ...rest } = await pushableBrowser(stack, push, { prefix, url: appUrl, launch });
  return { ...rest, bob };
}

/** Bob presses Enable notifications; returns once they are on and his service worker is active. */
async function enableNotifications(bob) {
  await bob.getByRole("button", { name: "Enable notifications" }).click();
  await expect(bob.getByRole("status", { name: "Notification status" })).toHaveText("Notifications are on.");
  await expect
    .poll(() => bob.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.active?.state ?? "none"))
    .toBe("activated");
}

test("a push wakes Bob's closed app: his service worker shows Alice's message, nothing for a muted chat, only mentions where asked; a click opens or focuses the chat", async ({
  stack,
  newPerson,
  appUrl,
}) => {
  const push = await startPushService();
  const desktop = await startDesktop();
  const launch = { ...CHROMIUM_LAUNCH, env: desktop.env() };
  const { profile, context: bobContext, sub, problems, bob } = await bobsBrowser(stack, push, "qpq-pw-push-", appUrl, launch);
  try {
    const alice = await newPerson();
    await chatOfTwo(alice, bob, "hello bob", "hi alice");
    await createGroup(alice, "Quiet room", ["bob"]);
    await createGroup(alice, "Busy room", ["bob"]);

    // Bob mutes one group and sets the other to Mentions (on this device only), then turns
    // notifications on.
    for (const [room, choice] of [["Quiet room", "Muted"], ["Busy room", "Mentions"]]) {
      await openConversation(bob, room);
      await bob.getByRole("button", { name: "Group info" }).click();
      const level = bob.getByRole("combobox", { name: "Notifications" });
      await expect(level).toHaveValue("all");
      await level.selectOption({ label: choice });
      await bob.getByRole("button", { name: "Close" }).click();
    }
    await enableNotifications(bob);

    // Bob closes his tabs (the profile stays).
    const { helper, deliver } = await closeTheApp(stack, bobContext, bob);

    await openConversation(alice, "Quiet room");
    await send(alice, "muted chatter");
    await openConversation(alice, "Busy room");
    await send(alice, "chatter for everyone");
    await send(alice, "@bob can you look?");
    await openConversation(alice, "bob@localhost");
    await send(alice, "Dinner at eight?");

    // The node pushes once; the push carries nothing but the padded wake-up.
    const [received] = await push.waitFor(sub.id, 1);
    expect(received.plaintext).toBe("wake");
    expect(received.urgency).toBe("high");
    expect(received.contact).toBe("mailto:postmaster@localhost");

    await deliver(received.plaintext);

    const byTitle = (list) => [...list].sort((a, b) => a.title.localeCompare(b.title));
    await expect
      .poll(async () => byTitle(await shownNotifications(helper)), { timeout: 60_000 })
      .toEqual([
        expect.objectContaining({ title: "alice@localhost", body: "Dinner at eight?" }),
        expect.objectContaining({ title: "alice@localhost in Busy room", body: "@bob can you look?" }),
      ]);
    const shown = JSON.stringify(await shownNotifications(helper));
    expect(shown).not.toContain("muted chatter");
    expect(shown).not.toContain("chatter for everyone");
    expect(push.received).toHaveLength(1);

    // Bob clicks the notification of Alice's message on his desktop: the app opens on that
    // chat, with the messages the worker fetched. (The helper page is of the app's origin but
    // is not the app: it is not taken for an open chat.)
    const dinner = await desktop.waitFor("Dinner at eight?");
    expect(dinner.summary).toBe("alice@localhost");
    const opened = bobContext.waitForEvent("page");
    desktop.click(dinner);
    const back = await opened;
    await expect(back.getByRole("heading", { level: 2, name: "alice@localhost" })).toBeVisible();
    await expectChat(back, ["hello bob", "hi alice", "Dinner at eight?"]);
    await helper.close();
    await openConversation(back, "Quiet room");
    await expectChat(back, ["muted chatter"]);

    // With the app open on another chat behind another tab, a click brings that tab to the
    // front on Alice's chat; no window is added. (Chromium's own focus, not Playwright's
    // emulation of it.)
    const cdp = await bobContext.newCDPSession(back);
    await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: false });
    const other = await bobContext.newPage();
    await other.bringToFront();
    await expect.poll(() => back.evaluate(() => document.hasFocus())).toBe(false);
    await openConversation(alice, "bob@localhost");
    await send(alice, "Shall I book?");
    const book = await desktop.waitFor("Shall I book?");
    desktop.click(book);
    await expect(back.getByRole("heading", { level: 2, name: "alice@localhost" })).toBeVisible();
    await expectChat(back, ["hello bob", "hi alice", "Dinner at eight?", "Shall I book?"]);
    await expect.poll(() => back.evaluate(() => document.hasFocus())).toBe(true);
    expect(bobContext.pages()).toHaveLength(2);
    expect(problems).toEqual([]);
  } finally {
    await bobContext.close();
    await push.close();
    await desktop.close();
    await rm(profile, { recursive: true, force: true });
  }
});

test("a tab in the background shows Alice's message as a notification; in front, the chat shows it and nothing pops up", async ({
  stack,
  newPerson,
}) => {
  const alice = await newPerson();
  const bob = await newPerson();
  await bob.context().grantPermissions(["notifications"], { origin: stack.url });
  await chatOfTwo(alice, bob, "hello bob", "hi alice");
  await expect
    .poll(() => bob.evaluate(async () => (await navigator.serviceWorker.getRegistration("/"))?.active?.state ?? "none"))
    .toBe("activated");
  // Chromium's own focus rather than Playwright's emulation of it: only the page in front has it.
  const cdp = await bob.context().newCDPSession(bob);
  await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: false });

  // Bob turns to another tab: his chat is in the background. The tab holds the engine, so no
  // push comes; the tab itself shows what a push would have.
  const other = await bob.context().newPage();
  await other.bringToFront();
  await expect.poll(() => bob.evaluate(() => document.hasFocus())).toBe(false);
  await send(alice, "are you there?");
  await expect
    .poll(() => shownNotifications(bob))
    .toEqual([expect.objectContaining({ title: "alice@localhost", body: "are you there?" })]);
  // Carol is no contact of Bob's: her first message is a request, announced without its text.
  const carol = await newPerson();
  await createAccount(carol, "carol");
  await startChat(carol, "bob");
  await send(carol, "click this link, stranger");
  await expect
    .poll(() => shownNotifications(bob))
    .toContainEqual(
      expect.objectContaining({
        title: "Message request",
        body: "carol@localhost wants to send you messages. Open quicproquo to accept or delete the request.",
      }),
    );
  expect(JSON.stringify(await shownNotifications(bob)), "a stranger's text does not pop up").not.toContain("click this link");

  // Back in front, with the chat open: the message shows in place and no notification is added.
  await bob.bringToFront();
  await expect.poll(() => bob.evaluate(() => document.hasFocus())).toBe(true);
  await send(alice, "now you see it");
  await expectChat(bob, ["hello bob", "hi alice", "are you there?", "now you see it"]);
  await bob.waitForTimeout(1_000); // longer than the page gathers messages before notifying
  expect(JSON.stringify(await shownNotifications(bob))).not.toContain("now you see it");
  await other.close();
});

test("when a passphrase locks Bob's app, a push shows only that messages came", async ({ stack, newPerson, appUrl }) => {
  const push = await startPushService();
  const { profile, context: bobContext, sub, problems, bob } = await bobsBrowser(stack, push, "qpq-pw-push-lock-", appUrl);
  try {
    const alice = await newPerson();
    await chatOfTwo(alice, bob, "hello bob", "hi alice");
    await enableNotifications(bob);
    await bob.getByRole("button", { name: "Devices" }).click();
    const devices = bob.getByRole("dialog", { name: "Your devices" });
    await devices.getByLabel("New passphrase").fill("correct horse battery staple");
    await devices.getByRole("button", { name: "Set passphrase" }).click();
    await expect(devices.getByRole("status").filter({ hasText: "Passphrase set" })).toBeVisible();
    const { helper, deliver } = await closeTheApp(stack, bobContext, bob);

    await send(alice, "the locked secret");
    const [received] = await push.waitFor(sub.id, 1);
    // Whoever ran the engine may outlive the app's pages by a moment (the tabs' SharedWorker
    // does): with no page of the app open, the push waits for the engine lock rather than
    // drop. Here a page that is not the app holds it for a while.
    await helper.evaluate(
      () =>
        new Promise((taken) =>
          navigator.locks.request("qpq-engine", () => {
            taken();
            return new Promise((release) => setTimeout(release, 1_500));
          }),
        ),
    );
    await deliver(received.plaintext);
    await expect
      .poll(() => shownNotifications(helper), { timeout: 30_000 })
      .toEqual([
        expect.objectContaining({ title: "quicproquo", body: "You have new messages. Open quicproquo and unlock it to read them." }),
      ]);
    expect(JSON.stringify(await shownNotifications(helper))).not.toContain("the locked secret");
    expect(problems).toEqual([]);
  } finally {
    await bobContext.close();
    await push.close();
    await rm(profile, { recursive: true, force: true });
  }
});

test("once Bob's last tab is closed, his browser takes no message itself, even while it keeps the engine's worker: the node pushes it", async ({
  stack,
  newPerson,
  appUrl,
}) => {
  const push = await startPushService();
  const { profile, context: bobContext, sub, problems, bob } = await bobsBrowser(stack, push, "qpq-pw-push-retire-", appUrl);
  try {
    const alice = await newPerson();
    await chatOfTwo(alice, bob, "hello bob", "hi alice");
    await enableNotifications(bob);

    // A page of the origin that is not a tab of the app holds on to the engine's worker, so
    // the browser does not end it when Bob's tab goes (Chromium ends it a moment later; a
    // browser may keep it for longer).
    const holder = await bobContext.newPage();
    await holder.goto(`${stack.url}/manifest.webmanifest`);
    await holder.evaluate(() => {
      window.keep = new SharedWorker("/engine-worker.js", { type: "module", name: "qpq-engine" });
    });
    const { helper, deliver } = await closeTheApp(stack, bobContext, bob);

    // The worker lets go of the engine (it disconnected and closed) although a page holds it.
    await expect
      .poll(() => helper.evaluate(async () => (await navigator.locks.query()).held.some((l) => l.name === "qpq-engine")))
      .toBe(false);

    await send(alice, "are you still there?");
    const [received] = await push.waitFor(sub.id, 1);
    expect(received.plaintext).toBe("wake");
    await deliver(received.plaintext);
    await expect
      .poll(() => shownNotifications(helper), { timeout: 30_000 })
      .toEqual([expect.objectContaining({ title: "alice@localhost", body: "are you still there?" })]);
    expect(problems).toEqual([]);
  } finally {
    await bobContext.close();
    await push.close();
    await rm(profile, { recursive: true, force: true });
  }
});
