import { test, expect } from "../support/stack.js";
import { waitUntil } from "../support/processes.js";
import { DELIVERED, connection, createAccount, expectChat, expectOnline, openConversation, ownMessage, send, startChat } from "../support/app.js";

/** Alice and Bob, online, in one chat that both have open. */
async function aliceAndBob(newPerson) {
  const alice = await newPerson();
  const bob = await newPerson();
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await startChat(alice, "bob");
  await send(alice, "first");
  await openConversation(bob, "alice@localhost");
  await expectChat(bob, ["first"]);
  return { alice, bob };
}

test("the gateway restarts: both reconnect by themselves and nothing is lost or doubled", async ({ stack, newPerson }) => {
  const { alice, bob } = await aliceAndBob(newPerson);

  await stack.gateway.stop();
  for (const p of [alice, bob]) await expect(connection(p)).toHaveText(/^Offline: .+ Retrying (in \d+ s|now…)/);

  // Written during the outage: they wait in the outbox.
  for (const t of ["outage 1", "outage 2", "outage 3"]) await send(alice, t);
  for (const t of ["while down A", "while down B"]) await send(bob, t);
  await expect(ownMessage(alice, "outage 3").locator(".msg-status")).toHaveText("Sending…");

  await stack.restartGateway();
  for (const p of [alice, bob]) await expectOnline(p, { timeout: 45_000 });

  const alicesOrder = ["first", "outage 1", "outage 2", "outage 3"];
  const bobsOrder = ["while down A", "while down B"];
  // Each side shows its own messages in the order written, then the other side's that arrived.
  await expectChat(alice, [...alicesOrder, ...bobsOrder]);
  await expectChat(bob, ["first", ...bobsOrder, ...alicesOrder.slice(1)]);
  for (const t of alicesOrder) await expect(ownMessage(alice, t).locator(".msg-status")).toHaveText(DELIVERED);
  for (const t of bobsOrder) await expect(ownMessage(bob, t).locator(".msg-status")).toHaveText(DELIVERED);
});

test("a server node dies: sessions move to the other node and messages keep flowing", async ({ cluster, newPerson }) => {
  const { alice, bob } = await aliceAndBob(newPerson);
  // Each browser holds exactly one session (the connection that registered is closed).
  const health = () => cluster.gateway.health();
  await waitUntil(async () => (await health()).nodes.reduce((n, x) => n + x.sessions, 0) === 2, 10_000, "two sessions");
  // The gateway spreads sessions over the nodes, by the counts it sees when each connects: both
  // may land on one node when a registration connection closes late (a loaded machine). Kill
  // the node carrying one session if there is one, else the one carrying both.
  const before = (await health()).nodes;
  const victimIndex = before.findIndex((n) => n.sessions === 1) >= 0
    ? before.findIndex((n) => n.sessions === 1)
    : before.findIndex((n) => n.sessions === 2);
  const moving = before[victimIndex].sessions;
  const victim = cluster.nodes[victimIndex];
  const survivor = cluster.nodes[1 - victimIndex];
  for (const p of [alice, bob]) await recordConnectionStates(p);
  await victim.kill();

  // Detecting a dead node takes a QUIC idle timeout or a missed heartbeat (about 30 s);
  // meanwhile the message waits in the outbox of whoever was on the dead node.
  await send(alice, "after the crash from Alice");
  await expectChat(bob, ["first", "after the crash from Alice"], { timeout: 60_000 });
  await send(bob, "after the crash from Bob");
  await expectChat(alice, ["first", "after the crash from Alice", "after the crash from Bob"], { timeout: 60_000 });
  await expect(ownMessage(alice, "after the crash from Alice").locator(".msg-status")).toHaveText(DELIVERED);

  // Every session now runs on the surviving node.
  const now = await health();
  expect(now.nodes.find((n) => n.addr === victim.addr)).toMatchObject({ up: false, sessions: 0 });
  expect(now.nodes.find((n) => n.addr === survivor.addr)).toMatchObject({ up: true, sessions: 2 });
  for (const p of [alice, bob]) await expectOnline(p);
  // Exactly those on the dead node lost their connection and came back.
  const states = await Promise.all([alice, bob].map((p) => p.evaluate(() => window.__connectionStates)));
  expect(states.filter((s) => s.includes("offline") || s.includes("connecting"))).toHaveLength(moving);
});

/** Starts recording the connection indicator's states in the page (window.__connectionStates). */
async function recordConnectionStates(page) {
  await connection(page).evaluate((el) => {
    window.__connectionStates = [];
    const record = () => window.__connectionStates.push(el.dataset.state);
    new MutationObserver(record).observe(el, { attributes: true, childList: true, characterData: true, subtree: true });
  });
}
