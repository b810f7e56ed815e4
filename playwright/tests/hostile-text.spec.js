import { test, expect } from "../support/stack.js";
import { acceptRequest, chatTexts, conversationEntry, createAccount, expectChat, messageLog, openConversation, requestEntry, send, startChat } from "../support/app.js";

/** About 10 KB of emoji, with skin tones and joined sequences. */
function tenKilobytesOfEmoji() {
  const pieces = ["😀", "🎉", "👍🏽", "🏳️‍🌈", "👩‍👩‍👧", "🇳🇱", "🔥"];
  let s = "";
  for (let i = 0; new TextEncoder().encode(s).length < 10 * 1024; i++) s += pieces[i % pieces.length];
  return s;
}

const HOSTILE = [
  "<img src=x onerror=window.__pwned=1>",
  "<script>window.__pwned=1</script>",
  "W".repeat(5000),
  "abc \u202Etxt.exe should stay in its box",
  tenKilobytesOfEmoji(),
];

/** What a message body contains, as the page sees it. */
function inspectBodies(page) {
  return messageLog(page)
    .locator(".msg:not(.system) .msg-body")
    .evaluateAll((bodies) =>
      bodies.map((b) => ({
        text: b.textContent,
        innerText: b.innerText,
        elements: b.querySelectorAll("*").length,
        nonText: [...b.childNodes].filter((n) => n.nodeType !== Node.TEXT_NODE).length,
        isolated: getComputedStyle(b).unicodeBidi === "isolate" && b.getAttribute("dir") === "auto",
      })),
    );
}

/** No horizontal overflow in the message list, nor on the page. */
function overflow(page) {
  return page.evaluate(() => {
    const log = document.querySelector('[role="log"][aria-label="Messages"]');
    const list = document.querySelector('[aria-label="Conversations"]');
    return {
      log: log.scrollWidth - log.clientWidth,
      list: list.scrollWidth - list.clientWidth,
      page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    };
  });
}

for (const [layout, viewport] of [
  ["desktop", { width: 1280, height: 800 }],
  ["phone", { width: 390, height: 844 }],
]) {
  test(`hostile text shows as exactly that text and keeps the ${layout} layout`, async ({ stack, newPerson }) => {
    const alice = await newPerson({ viewport });
    const bob = await newPerson({ viewport });
    await createAccount(alice, "alice");
    await createAccount(bob, "bob");
    await startChat(alice, "bob");
    for (const text of HOSTILE) await send(alice, text);

    // Bob's request shows the first message as text; accepted, the preview in his list is
    // the last message, as text, in one line.
    await expect(requestEntry(bob, "alice@localhost")).toContainText(HOSTILE[0].replace(/\s+/g, " ").slice(0, 40));
    await acceptRequest(bob, "alice@localhost");
    await expect(conversationEntry(bob, "alice@localhost")).toContainText("🎉");
    await openConversation(bob, "alice@localhost");
    await expectChat(bob, HOSTILE);

    for (const page of [alice, bob]) {
      expect(await chatTexts(page)).toEqual(HOSTILE);
      for (const [i, body] of (await inspectBodies(page)).entries()) {
        expect(body.text, `message ${i}`).toBe(HOSTILE[i]);
        expect(body.innerText, `message ${i}`).toBe(HOSTILE[i]);
        expect(body.elements, `message ${i} has elements inside`).toBe(0);
        expect(body.nonText, `message ${i} has non-text nodes`).toBe(0);
        expect(body.isolated, `message ${i} is bidi-isolated`).toBe(true);
      }
      expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
      expect(await page.locator("#messages img, #messages script").count()).toBe(0);
      const o = await overflow(page);
      expect(o.log, "the message list scrolls sideways").toBeLessThanOrEqual(0);
      expect(o.list, "the conversation list scrolls sideways").toBeLessThanOrEqual(0);
      expect(o.page, "the page scrolls sideways").toBeLessThanOrEqual(0);
      // The composer is still on screen, not pushed away by the text.
      await expect(page.getByRole("button", { name: "Send" })).toBeInViewport();
    }
  });
}
