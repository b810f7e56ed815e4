import { test, expect } from "../support/stack.js";
import { connection, createAccount, expectChat, openConversation, send, startChat } from "../support/app.js";

test("a second tab offers to take over, and the first tab stops when it does", async ({ stack, newPerson, appUrl }) => {
  const bob = await newPerson();
  await createAccount(bob, "bob");
  const first = await newPerson();
  const firstTabSockets = [];
  first.on("websocket", (ws) => firstTabSockets.push(ws));
  await createAccount(first, "alice");
  await startChat(first, "bob");
  await send(first, "from the first tab");

  const sessions = async () => (await stack.gateway.health()).nodes.reduce((n, x) => n + x.sessions, 0);
  const before = await sessions();
  const firstTabOpen = firstTabSockets.filter((ws) => !ws.isClosed()).length;
  expect(firstTabOpen).toBeGreaterThan(0);

  // The same profile (browser context) in a second tab.
  const second = await first.context().newPage();
  await second.goto(appUrl);
  await expect(second.getByRole("heading", { name: "quicproquo is open in another tab" })).toBeVisible();
  await expect(second.getByText("Signed in as")).toBeHidden();
  // The first tab is unaffected so far.
  await expect(connection(first)).toHaveText("Online via WebSocket");

  await second.getByRole("button", { name: "Use here" }).click();
  await expect(second.getByText("Signed in as alice@localhost")).toBeVisible();
  await expect(connection(second)).toHaveText("Online via WebSocket");

  await expect(first.getByRole("heading", { name: "quicproquo was opened in another tab" })).toBeVisible();
  await expect(first.getByRole("button", { name: "Use here" })).toBeVisible();
  await expect(first.getByText("Signed in as")).toBeHidden();
  // Its engine stopped: the gateway lost the first tab's sessions and gained the second's.
  await expect.poll(sessions).toBe(before - firstTabOpen + 1);

  // The second tab carries on with the same account and history.
  await openConversation(second, "bob@localhost");
  await expectChat(second, ["from the first tab"]);
  await send(second, "from the second tab");
  await openConversation(bob, "alice@localhost");
  await expectChat(bob, ["from the first tab", "from the second tab"]);

  // And the first tab can take it back.
  await first.getByRole("button", { name: "Use here" }).click();
  await expect(connection(first)).toHaveText("Online via WebSocket");
  await expect(second.getByRole("heading", { name: "quicproquo was opened in another tab" })).toBeVisible();
  await openConversation(first, "bob@localhost");
  await expectChat(first, ["from the first tab", "from the second tab"]);
});
