// The Transport setting: automatic by default (WebTransport here), WebSocket when chosen,
// kept across reloads, and overridden by a `?transport=` URL parameter.

import { test, expect, appUrlFor } from "../support/stack.js";
import { createAccount, expectOnline } from "../support/app.js";

test("the Transport select forces a transport, keeps it, and a URL parameter overrides it", async ({ stack, newPerson }) => {
  const alice = await newPerson({}, { url: appUrlFor("auto") });
  await createAccount(alice, "alice", { transport: "WebTransport" });
  const select = alice.getByRole("combobox", { name: "Transport" });
  await expect(select).toHaveValue("auto");
  await expect(select.locator("option:checked")).toHaveText("Automatic");

  // Choosing WebSocket reconnects over WebSocket…
  await select.selectOption({ label: "WebSocket" });
  await expectOnline(alice, { transport: "WebSocket" });
  await expect(alice.getByRole("combobox", { name: "Transport" })).toHaveValue("websocket");
  // …and stays so after a reload.
  await alice.reload();
  await expectOnline(alice, { transport: "WebSocket" });

  // A URL parameter wins over the setting, for this page only.
  await alice.goto(appUrlFor("webtransport"));
  await expectOnline(alice, { transport: "WebTransport" });
  await expect(alice.getByRole("combobox", { name: "Transport" })).toHaveValue("webtransport");
  await alice.goto(appUrlFor("auto"));
  await expectOnline(alice, { transport: "WebSocket" });

  // Back to automatic: WebTransport again, and the parameter is gone from the address.
  await alice.getByRole("combobox", { name: "Transport" }).selectOption({ label: "Automatic" });
  await expectOnline(alice, { transport: "WebTransport" });
  expect(new URL(alice.url()).search).toBe("");
});
