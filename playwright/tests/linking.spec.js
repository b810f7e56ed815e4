import { test, expect } from "../support/stack.js";
import { startNativeClient } from "../support/processes.js";
import {
  DOMAIN,
  connection,
  conversationEntry,
  createAccount,
  createGroup,
  expectChat,
  expectOnline,
  openConversation,
  ownMessage,
  send,
  showLinkCode,
  startChat,
  typeLinkCode,
} from "../support/app.js";

/**
 * Counts the app's calls of `navigator.storage.persist()` in `window.qpqPersistAsked` (a
 * `prepare` of newPerson).
 */
function countPersistCalls(context) {
  return context.addInitScript(() => {
    if (!navigator.storage?.persist) return;
    const persist = navigator.storage.persist.bind(navigator.storage);
    window.qpqPersistAsked = 0;
    navigator.storage.persist = () => {
      window.qpqPersistAsked++;
      return persist();
    };
  });
}

/** Sets Chromium's answer to `navigator.storage.persist()` for `page`'s browser context ("granted" or "denied"). */
async function setKeepData(page, setting) {
  const cdp = await page.context().newCDPSession(page);
  const { targetInfo } = await cdp.send("Target.getTargetInfo");
  await cdp.send("Browser.setPermission", {
    permission: { name: "persistent-storage" },
    setting,
    origin: new URL(page.url()).origin,
    browserContextId: targetInfo.browserContextId,
  });
  // The session stays open: Chromium forgets what it set when it closes.
}

/**
 * Checks the QR code beside the link code on `page`: a drawn canvas, dark modules on white,
 * exactly the QR code of the app's address with `#link=CODE` (computed by the same engine).
 */
async function expectLinkQr(page, code) {
  const qr = page.getByRole("dialog", { name: "Your devices" }).getByRole("region", { name: "Link code" }).getByRole("img", { name: "QR code of the link code" });
  await expect(qr).toBeVisible();
  const drawn = await qr.evaluate(async (canvas, code) => {
    const { qrCode } = await import("/pkg/qpq_web.js");
    const want = qrCode(`${location.origin}/#link=${code}`);
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const scale = canvas.width / (want.size + 8);
    let dark = 0;
    let light = 0;
    let wrong = 0;
    for (let y = 0; y < want.size; y++) {
      for (let x = 0; x < want.size; x++) {
        // The middle of each module, past the quiet zone of 4 modules.
        const px = Math.floor((x + 4 + 0.5) * scale);
        const py = Math.floor((y + 4 + 0.5) * scale);
        const isDark = data[(py * canvas.width + px) * 4] < 128;
        if (isDark) dark++;
        else light++;
        if (isDark !== (want.modules[y * want.size + x] === "1")) wrong++;
      }
    }
    return { size: want.size, width: canvas.width, height: canvas.height, dark, light, wrong };
  }, code);
  expect(drawn.size).toBeGreaterThan(20);
  expect(drawn.width).toBe(drawn.height);
  expect(drawn.dark).toBeGreaterThan(100);
  expect(drawn.light).toBeGreaterThan(100);
  expect(drawn.wrong).toBe(0);
}

test("Alice links a second browser: it joins her chats with their history, speaks as her, a sixth device is refused, and Remove device signs it out", async ({
  stack,
  newPerson,
  appUrl,
}) => {
  test.setTimeout(150_000);
  const alice = await newPerson({}, { prepare: countPersistCalls });
  const bob = await newPerson();
  // The sign-up screen says why the browser may ask to keep the site's data; the app asks
  // once the account exists (here the browser grants it).
  await expect(
    alice.getByText(
      "Your browser may ask whether this site may keep its data: allow it, so that your keys and messages are not cleared when the disk runs low.",
    ),
  ).toBeVisible();
  await setKeepData(alice, "granted");
  expect(await alice.evaluate(() => window.qpqPersistAsked)).toBe(0);
  await createAccount(alice, "alice");
  await expect.poll(() => alice.evaluate(() => window.qpqPersistAsked)).toBe(1);
  expect(await alice.evaluate(() => navigator.storage.persisted())).toBe(true);
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "before the laptop");
  await createGroup(alice, "Trip", ["bob"]);
  await send(alice, "group before the laptop");
  // A setting of this device that the laptop takes over.
  await alice.getByRole("button", { name: "Group info" }).click();
  await alice.getByRole("combobox", { name: "Notifications" }).selectOption({ label: "Muted" });
  await alice.getByRole("button", { name: "Close" }).click();

  // The code links a new browser; Alice's device says what it did. Beside the code: its QR
  // code, and what the browser answered about keeping the data.
  const laptopCode = await showLinkCode(alice);
  await expectLinkQr(alice, laptopCode);
  await expect(alice.getByRole("dialog", { name: "Your devices" })).toContainText(
    "This browser keeps quicproquo's data even when the disk runs low.",
  );
  const laptop = await newPerson();
  await typeLinkCode(laptop, laptopCode);
  await expect(laptop.getByText(`Signed in as alice@${DOMAIN}`)).toBeVisible();
  await expectOnline(laptop);
  const devices = alice.getByRole("dialog", { name: "Your devices" });
  await expect(devices.getByRole("status").filter({ hasText: "Linked" })).toHaveText(
    "Linked “Chromium on Linux”. It was added to 2 conversations.",
  );
  const rows = devices.getByRole("list", { name: "Devices" }).getByRole("listitem");
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText(/^Chromium on Linux\s*this device, added /);
  await expect(rows.nth(1)).toContainText(/^Chromium on Linux\s*added .*, last connected /);
  await devices.getByRole("button", { name: "Close" }).click();

  // Both conversations appear on the laptop with their history, and it reads what Bob sends
  // from now on.
  const laptopList = laptop.getByRole("list", { name: "Conversations" }).getByRole("button");
  await expect(laptopList).toHaveCount(2);
  await openConversation(bob, `alice@${DOMAIN}`);
  await send(bob, "hello to both of you");
  await openConversation(laptop, `bob@${DOMAIN}`);
  await expectChat(laptop, ["before the laptop", "hello to both of you"]);
  // Her first device has it too.
  await openConversation(alice, `bob@${DOMAIN}`);
  await expectChat(alice, ["before the laptop", "hello to both of you"]);
  await openConversation(bob, "Trip");
  await send(bob, "trip news");
  await openConversation(laptop, "Trip");
  await expectChat(laptop, ["group before the laptop", "trip news"]);
  await laptop.getByRole("button", { name: "Group info" }).click();
  await expect(laptop.getByRole("combobox", { name: "Notifications" })).toHaveValue("muted");
  await laptop.getByRole("button", { name: "Close" }).click();

  // What the laptop sends is Alice's: Bob sees it from her, her first device as her own.
  await send(laptop, "from the laptop");
  await expectChat(bob, ["group before the laptop", "trip news", "from the laptop"]);
  await expect(bob.getByRole("log", { name: "Messages" }).locator(".msg").last()).toContainText("alice");
  await openConversation(alice, "Trip");
  await expect(ownMessage(alice, "from the laptop")).toBeVisible();
  // And what her first device sends reaches the laptop as its own.
  await send(alice, "from the phone");
  await expect(ownMessage(laptop, "from the phone")).toBeVisible();

  // Three more devices make five; a sixth is refused on both sides, with why.
  const others = [];
  for (let n = 3; n <= 5; n++) {
    const code = await showLinkCode(alice);
    let page;
    if (n === 3) {
      // The third is opened at the QR code's address: the code is filled in, and the address
      // loses it. Its browser will not keep the data.
      page = await newPerson({}, { url: `${appUrl}#link=${code}` });
      await expect(page.getByRole("textbox", { name: "Link code" })).toHaveValue(code);
      await expect(page).not.toHaveURL(/#link=/);
      await setKeepData(page, "denied");
      await page.getByRole("button", { name: "Link", exact: true }).click();
    } else {
      page = await newPerson();
      await typeLinkCode(page, code);
    }
    others.push(page);
    await expect(page.getByText(`Signed in as alice@${DOMAIN}`)).toBeVisible();
    await expect(devices.getByRole("list", { name: "Devices" }).getByRole("listitem")).toHaveCount(n);
  }
  const sixth = await newPerson();
  await typeLinkCode(sixth, await showLinkCode(alice));
  const why = /already has five devices, the most it can have: remove one you no longer use/;
  await expect(sixth.locator("#link-error")).toHaveText(why);
  await expect(devices.getByRole("alert")).toHaveText(why);
  await expect(devices.getByRole("list", { name: "Devices" }).getByRole("listitem")).toHaveCount(5);

  // Remove device on Alice's first device: the laptop (the second one added) is signed out…
  await devices.getByRole("list", { name: "Devices" }).getByRole("listitem").nth(1).getByRole("button", { name: /Remove device/ }).click();
  await alice.getByRole("dialog", { name: "Remove this device?" }).getByRole("button", { name: "Remove device" }).click();
  await expect(devices.getByRole("list", { name: "Devices" }).getByRole("listitem")).toHaveCount(4);
  await expect(connection(laptop)).toContainText("removed from your account");
  // …and receives nothing more, while Alice's first device does.
  await send(bob, "after the laptop left");
  await expect(alice.getByRole("log", { name: "Messages" })).toContainText("after the laptop left");
  await laptop.waitForTimeout(2_000);
  await expectChat(laptop, ["group before the laptop", "trip news", "from the laptop", "from the phone"]);

  // Sign out on another of her devices: after the question, that browser is back at sign-up
  // and the account has one device fewer. Bob's only device cannot sign out.
  const tablet = others[0];
  await tablet.getByRole("button", { name: "Devices" }).click();
  await expect(tablet.getByRole("dialog", { name: "Your devices" })).toContainText(
    "This browser may clear quicproquo's data when the disk runs low; allowing it to keep the data (in the site's settings) prevents that.",
  );
  expect(await tablet.evaluate(() => navigator.storage.persisted())).toBe(false);
  await tablet.getByRole("dialog", { name: "Your devices" }).getByRole("button", { name: "Sign out" }).click();
  const question = tablet.getByRole("dialog", { name: "Sign out of this browser?" });
  await expect(question).toContainText("Everything quicproquo keeps here is deleted");
  await question.getByRole("button", { name: "Sign out" }).click();
  await expect(tablet.getByRole("button", { name: "Create account" })).toBeVisible();
  await devices.getByRole("button", { name: "Close" }).click();
  await alice.getByRole("button", { name: "Devices" }).click();
  await expect(devices.getByRole("list", { name: "Devices" }).getByRole("listitem")).toHaveCount(3);
  await bob.getByRole("button", { name: "Devices" }).click();
  await bob.getByRole("dialog", { name: "Your devices" }).getByRole("button", { name: "Sign out" }).click();
  await bob.getByRole("dialog", { name: "Sign out of this browser?" }).getByRole("button", { name: "Sign out" }).click();
  await expect(bob.getByRole("dialog", { name: "Sign out of this browser?" }).getByRole("alert")).toHaveText(
    /only device of your account/,
  );
});

test("a native device links to a browser account, and a browser to a native account", async ({ stack, newPerson }) => {
  test.setTimeout(90_000);
  const alice = await newPerson();
  const bob = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "hello from the browser");

  // `qpq --link CODE` with the code Alice's browser shows.
  const terminal = startNativeClient({ name: "alice-terminal", node: stack.nodes[0], dir: stack.dir, args: ["--link", await showLinkCode(alice)] });
  await terminal.waitForOutput("linked to alice@localhost");
  const devices = alice.getByRole("dialog", { name: "Your devices" });
  await expect(devices.getByRole("status").filter({ hasText: "Linked" })).toHaveText(/^Linked “qpq on linux”\. It was added to 1 conversation\.$/);
  await expect(devices.getByRole("list", { name: "Devices" }).getByRole("listitem").nth(1)).toContainText("qpq on linux");
  await devices.getByRole("button", { name: "Close" }).click();
  // It has the chat and its history, reads Bob and writes as Alice.
  await terminal.waitForOutput("! 1 earlier message from your other device is here");
  terminal.type("history 1");
  await terminal.waitForOutput("hello from the browser");
  await openConversation(bob, `alice@${DOMAIN}`);
  await send(bob, "hi terminal");
  await terminal.waitForOutput("hi terminal");
  terminal.type("send 1 typed in a terminal");
  await expectChat(bob, ["hello from the browser", "hi terminal", "typed in a terminal"]);
  await expect(ownMessage(alice, "typed in a terminal")).toBeVisible();
  // A profile set in the terminal is the account's: Bob's list names the chat by it.
  terminal.type("setprofile Alice at a terminal | testing");
  await terminal.waitForOutput("* profile set");
  await expect(conversationEntry(bob, "Alice at a terminal")).toBeVisible();
  terminal.type("profile");
  await terminal.waitForOutput('alice@localhost: "Alice at a terminal", status "testing"');

  // And back: Carol's account lives in a terminal, and `link` gives her browser a code.
  const carol = startNativeClient({ name: "carol-terminal", node: stack.nodes[0], dir: stack.dir, args: ["--register", "carol"] });
  await carol.waitForOutput(`you are carol@${DOMAIN}`);
  await carol.waitForOutput("* online");
  carol.type("link");
  await carol.waitForOutput("link code: ");
  const code = /link code: ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){5})/.exec(carol.output)[1];
  const carolsBrowser = await newPerson();
  await typeLinkCode(carolsBrowser, code);
  await expect(carolsBrowser.getByText(`Signed in as carol@${DOMAIN}`)).toBeVisible();
  await carol.waitForOutput("* linked Chromium on Linux");
  await startChat(carolsBrowser, "bob");
  await send(carolsBrowser, "carol, from her browser");
  await openConversation(bob, `carol@${DOMAIN}`);
  await expectChat(bob, ["carol, from her browser"]);
  await send(bob, "hi carol");
  await carol.waitForOutput("hi carol");
  await terminal.stop();
  await carol.stop();
});
