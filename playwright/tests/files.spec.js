import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile } from "node:fs/promises";
import path from "node:path";
import { test, expect } from "../support/stack.js";
import { createAccount, messageLog, openConversation, startChat } from "../support/app.js";

const MB = 1024 * 1024;

/** Writes `size` random bytes to `file` a megabyte at a time; returns their SHA-256. */
async function randomFile(file, size) {
  const hash = createHash("sha256");
  const fh = await open(file, "w");
  try {
    for (let done = 0; done < size; done += MB) {
      const part = randomBytes(Math.min(MB, size - done));
      hash.update(part);
      await fh.write(part);
    }
  } finally {
    await fh.close();
  }
  return hash.digest("hex");
}

async function sha256Of(file) {
  const hash = createHash("sha256");
  for await (const part of createReadStream(file)) hash.update(part);
  return hash.digest("hex");
}

const attach = (page) => page.getByLabel("Attach file");

/** Alice and Bob in a 1:1 chat, both looking at it. */
async function chat(newPerson) {
  const alice = await newPerson();
  const bob = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await openConversation(bob, "alice@localhost");
  return { alice, bob };
}

test("a 100 MB file reaches Bob whole, and his download survives a reload", async ({ stack, newPerson }, testInfo) => {
  test.setTimeout(10 * 60_000);
  const size = 100 * MB;
  const file = path.join(testInfo.outputDir, "big.bin");
  await mkdir(testInfo.outputDir, { recursive: true });
  const sha = await randomFile(file, size);
  const { alice, bob } = await chat(newPerson);

  await attach(alice).setInputFiles(file);
  const upload = alice.getByRole("progressbar", { name: "Upload of big.bin" });
  await expect(upload).toBeVisible();
  // The upload shows its progress, then makes way for the message.
  await expect.poll(() => upload.evaluate((p) => p.value).catch(() => 1), { timeout: 5 * 60_000 }).toBeGreaterThan(0);
  await expect(upload).toHaveCount(0, { timeout: 5 * 60_000 });
  await expect(messageLog(alice).locator(".file .file-name")).toHaveText("big.bin");
  await expect(alice.getByText("Not sent")).toHaveCount(0);

  // Bob starts the download and reloads when about a third has arrived.
  await bob.getByRole("button", { name: "Download big.bin" }).click({ timeout: 60_000 });
  const download = bob.getByRole("progressbar", { name: "Download of big.bin" });
  await expect.poll(() => download.evaluate((p) => p.value), { timeout: 5 * 60_000, intervals: [100] }).toBeGreaterThan(0.3);
  await bob.reload();
  await openConversation(bob, "alice@localhost");

  // What had arrived is still here: the download continues from there.
  const resume = bob.getByRole("button", { name: /^Resume download of big\.bin \((\d+)%\)$/ });
  await expect(resume).toBeVisible();
  const pct = Number((await resume.getAttribute("aria-label")).match(/\((\d+)%\)/)[1]);
  expect(pct).toBeGreaterThanOrEqual(25);
  const saved = bob.waitForEvent("download", { timeout: 5 * 60_000 });
  await resume.click();
  const got = await saved;
  expect(got.suggestedFilename()).toBe("big.bin");
  expect(await sha256Of(await got.path())).toBe(sha);
});

test("an image shows as a picture, and an upload can be cancelled", async ({ stack, newPerson }) => {
  const { alice, bob } = await chat(newPerson);

  // A real PNG, drawn by the browser.
  const png = await alice.evaluate(async () => {
    const c = document.createElement("canvas");
    c.width = 64;
    c.height = 48;
    const g = c.getContext("2d");
    g.fillStyle = "#c33";
    g.fillRect(0, 0, 64, 48);
    const blob = await new Promise((r) => c.toBlob(r, "image/png"));
    return [...new Uint8Array(await blob.arrayBuffer())];
  });
  await attach(alice).setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: Buffer.from(png) });
  const picture = bob.getByRole("img", { name: "dot.png" });
  await expect(picture).toBeVisible({ timeout: 30_000 });
  expect(await picture.evaluate((img) => [img.naturalWidth, img.naturalHeight])).toEqual([64, 48]);
  await expect(alice.getByRole("img", { name: "dot.png" })).toBeVisible();

  // A name with markup in it is a name, not markup.
  await attach(alice).setInputFiles({ name: "<img src=x onerror=alert(1)>.txt", mimeType: "text/html", buffer: Buffer.from("hi") });
  await expect(bob.locator(".file .file-name").last()).toHaveText("<img src=x onerror=alert(1)>.txt");
  await expect(bob.locator(".file-size").last()).toContainText("text/html");

  // Cancelled while it goes: nothing reaches Bob.
  await attach(alice).setInputFiles({ name: "later.bin", mimeType: "application/octet-stream", buffer: randomBytes(40 * MB) });
  await alice.getByRole("button", { name: "Cancel upload of later.bin" }).click();
  await expect(alice.getByText("Upload cancelled.")).toBeVisible();
  await alice.getByRole("button", { name: "Dismiss" }).click();
  await expect(alice.getByText("Upload cancelled.")).toHaveCount(0);
  // A text sent afterwards arrives, and no file came before it.
  await alice.getByRole("textbox", { name: "Message", exact: true }).fill("after the cancel");
  await alice.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
  await expect(messageLog(bob).getByText("after the cancel")).toBeVisible();
  await expect(bob.locator(".file .file-name")).toHaveCount(2);
});

/** Every record of the downloads database in `page`: key, plaintext length and stored bytes. */
function storedChunks(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open("qpq-files");
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const t = req.result.transaction("chunks");
          const keys = t.objectStore("chunks").getAllKeys();
          const values = t.objectStore("chunks").getAll();
          t.oncomplete = async () => {
            req.result.close();
            const out = [];
            for (let i = 0; i < keys.result.length; i++) {
              const { length, data } = values.result[i];
              out.push({ key: keys.result[i], length, bytes: [...new Uint8Array(await data.arrayBuffer())] });
            }
            resolve(out);
          };
        };
      }),
  );
}

/** Stores `record` under `key` in the downloads database of `page`, as something on the disk could. */
function putChunk(page, key, record) {
  return page.evaluate(
    ([key, { length, bytes }]) =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open("qpq-files");
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const t = req.result.transaction("chunks", "readwrite");
          t.objectStore("chunks").put({ length, data: new Blob([Uint8Array.from(bytes)]) }, key);
          t.oncomplete = () => resolve(req.result.close());
          t.onerror = () => reject(t.error);
        };
      }),
    [key, record],
  );
}

test("a downloaded file is kept encrypted in this browser, and a damaged copy is fetched again", async ({ stack, newPerson }) => {
  const { alice, bob } = await chat(newPerson);
  const notes = Buffer.from("The secret plan: meet at the old mill at noon.\n".repeat(40));
  const other = Buffer.from("Shopping: bread, milk, apples.\n".repeat(40));
  await attach(alice).setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: notes });
  await attach(alice).setInputFiles({ name: "other.txt", mimeType: "text/plain", buffer: other });

  const save = async (name, label) => {
    const saved = bob.waitForEvent("download");
    await bob.getByRole("button", { name: `${label} ${name}` }).click();
    return readFile(await (await saved).path());
  };
  expect(await save("notes.txt", "Download")).toEqual(notes);
  expect(await save("other.txt", "Download")).toEqual(other);

  // At rest each file is one sealed chunk: nonce and tag around ciphertext, never the text.
  const chunks = await storedChunks(bob);
  expect(chunks.map((c) => c.length).sort()).toEqual([notes.length, other.length].sort());
  for (const c of chunks) {
    expect(c.bytes.length).toBe(c.length + 12 + 16);
    const stored = Buffer.from(c.bytes).toString("latin1");
    expect(stored).not.toContain("secret plan");
    expect(stored).not.toContain("Shopping");
  }
  // Saving again opens the sealed copy (nothing is fetched: the server could be gone).
  expect(await save("notes.txt", "Save")).toEqual(notes);

  // A chunk moved from another file does not open there: the copy is dropped with a sentence,
  // and the next Download fetches it again.
  const [a, b] = chunks;
  const moved = { ...b, length: a.length };
  await putChunk(bob, a.key, moved);
  const damagedName = a.length === notes.length ? "notes.txt" : "other.txt";
  await bob.getByRole("button", { name: `Save ${damagedName}` }).click();
  await expect(bob.getByText("The copy of this file kept in this browser was damaged, so it was removed. Download it again.")).toBeVisible();
  expect(await save(damagedName, "Download")).toEqual(damagedName === "notes.txt" ? notes : other);

  // So does a chunk with one bit flipped.
  const [fresh] = (await storedChunks(bob)).filter((c) => c.key[0] === a.key[0]);
  fresh.bytes[fresh.bytes.length - 20] ^= 1;
  await putChunk(bob, fresh.key, fresh);
  await bob.getByRole("button", { name: `Save ${damagedName}` }).click();
  await expect(bob.getByText("The copy of this file kept in this browser was damaged, so it was removed. Download it again.")).toBeVisible();
  expect(await save(damagedName, "Download")).toEqual(damagedName === "notes.txt" ? notes : other);
});
