// Profiles: a display name, status and picture set under Edit profile reach the people one
// chats with (conversation list, chat heading, member lists), inside the end-to-end encrypted
// conversations only: the node's database never holds them. A copy of someone's profile card
// whose signature does not verify, passed along by another member, is not used: the member
// lists say "Profile not verified" and the forged name appears nowhere.

import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { test, expect } from "../support/stack.js";
import { DOMAIN, conversationEntry, createAccount, createGroup, openConversation, send, startChat } from "../support/app.js";

const NAME = "Alice Liddell";
const STATUS = "down the rabbit hole";
/** As many UTF-8 bytes as NAME, so the forged card keeps its layout. */
const FORGED_NAME = "Mallory Evil!";

/** A small PNG (a colour gradient, 40×30), made here so the test needs no file. */
function gradientPng(width = 40, height = 30) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + 3 * width); // filter byte 0, then RGB
    for (let x = 0; x < width; x++) row.set([(255 * x) / width, (255 * y) / height, 160], 1 + 3 * x);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** How many pixels of an avatar's canvas are painted (opaque): the picture, not initials. */
function paintedPixels(canvas) {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] === 255) n += 1;
  return n;
}

/** Every byte the node keeps in SQLite (the database and its write-ahead log). */
async function nodeDatabaseBytes(stack) {
  const dir = path.join(stack.dir, "node");
  const files = (await readdir(dir)).filter((f) => f.startsWith("qpq.sqlite"));
  expect(files, `the node's database in ${dir}`).toContain("qpq.sqlite");
  return Buffer.concat(await Promise.all(files.map((f) => readFile(path.join(dir, f)))));
}

/** Loads the SDK in `page` and signs `name` up there (a client the test drives itself). */
async function sdkPerson(page, name) {
  await page.evaluate(async (name) => {
    const m = await import("/pkg/qpq_web.js");
    await m.default();
    const client = await m.QpqClient.register(name, { transport: "websocket" });
    client.start();
    while (client.connectionState().state !== "online") await new Promise((r) => setTimeout(r, 100));
    window.sdk = client;
  }, name);
}

test("a profile reaches the people one chats with, a forged copy is not used, and the server never holds it", async ({ stack, newPerson }) => {
  const [alice, bob, carol] = [await newPerson(), await newPerson(), await newPerson()];
  const aliceName = `alice@${DOMAIN}`;
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "Hi Bob");
  await openConversation(bob, aliceName);

  // Alice edits her profile; a file that is not a picture is refused in words.
  await alice.getByRole("button", { name: "Edit profile" }).click();
  const dialog = alice.getByRole("dialog", { name: "Edit profile" });
  await dialog.getByLabel("Picture", { exact: true }).setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture") });
  await expect(dialog.getByRole("alert")).toContainText("not a picture");
  await dialog.getByRole("textbox", { name: "Display name" }).fill(NAME);
  await dialog.getByRole("textbox", { name: "Status" }).fill(STATUS);
  await dialog.getByLabel("Picture", { exact: true }).setInputFiles({ name: "rabbit.png", mimeType: "image/png", buffer: gradientPng() });
  await expect(dialog.getByRole("img", { name: "Your picture" })).toBeVisible();
  await expect(dialog.getByRole("alert")).toHaveCount(0);
  await dialog.getByRole("button", { name: "Save" }).click();
  await expect(dialog).toBeHidden();

  // Bob sees her name, status and picture (painted from the bytes his engine holds).
  const entry = conversationEntry(bob, NAME);
  await expect(entry).toBeVisible();
  await expect(bob.getByRole("heading", { level: 2, name: NAME })).toBeVisible();
  await expect(bob.locator("#chat-subtitle")).toContainText(aliceName);
  await expect(bob.getByText(STATUS, { exact: true })).toBeVisible();
  for (const avatar of [entry.locator(".avatar canvas"), bob.locator("#chat-avatar canvas")]) {
    await expect.poll(() => avatar.evaluate(paintedPixels)).toBeGreaterThan(100);
  }

  // Carol (the SDK in her page, acting as a misbehaving client) is in a group with both.
  await sdkPerson(carol, "carol");
  await carol.evaluate((who) => window.sdk.addContact(who), aliceName);
  await createGroup(alice, "Wonderland", ["bob", "carol"]);
  await send(alice, "Welcome to Wonderland");
  // She passes along Alice's card with another name in it: its signature no longer verifies.
  await carol.evaluate(
    async ({ who, name, forged }) => {
      const client = window.sdk;
      const until = async (get) => {
        for (let i = 0; i < 200; i++) {
          const v = get();
          if (v) return v;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error("timed out");
      };
      const group = await until(() => client.conversations().find((c) => c.title === "Wonderland"));
      const card = await until(() => client.profileCard(who));
      const [from, to] = [new TextEncoder().encode(name), new TextEncoder().encode(forged)];
      const at = card.findIndex((_, i) => from.every((b, j) => card[i + j] === b));
      if (at < 0) throw new Error("the card does not hold the name as UTF-8");
      const copy = card.slice();
      copy.set(to, at);
      await client.shareProfileCard(group.id, copy);
    },
    { who: aliceName, name: NAME, forged: FORGED_NAME },
  );

  // Bob's group info names Alice as before, says her profile is not verified, and the forged
  // name is nowhere on his page.
  await openConversation(bob, "Wonderland");
  await bob.getByRole("button", { name: "Group info" }).click();
  const alicesLine = bob
    .getByRole("dialog", { name: "Wonderland" })
    .getByRole("list", { name: "Members of this conversation" })
    .getByRole("listitem")
    .filter({ hasText: aliceName });
  await expect(alicesLine).toContainText("Profile not verified");
  await expect(alicesLine.locator(".member-name")).toHaveText(NAME);
  await expect(bob.locator("body")).not.toContainText("Mallory");
  await expect(conversationEntry(bob, NAME)).toBeVisible();

  // Nothing of the profile reached the node's storage.
  const bytes = await nodeDatabaseBytes(stack);
  for (const text of [NAME, STATUS, FORGED_NAME]) expect(bytes.includes(Buffer.from(text)), `"${text}" in the node's database`).toBe(false);
});
