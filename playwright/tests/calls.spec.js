// Calls: WebRTC voice and video with Chromium's fake camera and microphone, signalled inside
// MLS, through a real TURN server (coturn, started for this file) when relay is forced.
// Media flow is read from `RTCPeerConnection.getStats()` of every connection the page made
// (an init script keeps a list of them; the app itself exposes nothing).

import { chromium } from "@playwright/test";
import { rm } from "node:fs/promises";
import { test as base, expect } from "../support/stack.js";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import {
  DOMAIN,
  addContact,
  chatOfTwo,
  openConversation,
  createAccount,
  createGroup,
  messageLog,
  openTab,
  showLinkCode,
  typeLinkCode,
} from "../support/app.js";
import { TURN_NODE_ARGS, TURN_URL, startTurn, turnCredential } from "../support/turn.js";
import { closeTheApp, pushableBrowser, shownNotifications, startPushService } from "../support/push-service.js";

const test = base.extend({
  /** coturn for this file's worker, on its own port. */
  turn: [
    async ({}, use) => {
      const turn = await startTurn();
      await use(turn);
      await turn.stop();
    },
    { scope: "worker", auto: true },
  ],
});

/** Chromium with fake camera and microphone, allowed to use them and to play sound. */
const LAUNCH = {
  ...CHROMIUM_LAUNCH,
  args: [
    ...CHROMIUM_LAUNCH.args,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
  ],
};

test.use({ launchOptions: LAUNCH, nodeArgs: TURN_NODE_ARGS });

/** Keeps every RTCPeerConnection the page makes in `window.__pcs`, with the states it went through. */
function trackPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.__states = [];
      this.addEventListener("connectionstatechange", () => this.__states.push(this.connectionState));
      window.__pcs.push(this);
    }
  };
}

/** A new person whose page records its peer connections (`query`: extra URL parameters). */
async function person(newPerson, appUrl, query = "") {
  const url = query ? `${appUrl}${appUrl.includes("?") ? "&" : "?"}${query}` : appUrl;
  return newPerson({}, { url, prepare: (context) => context.addInitScript(trackPeerConnections) });
}

/** Bytes received per kind over the page's connected peer connections, and what they use. */
function received(page) {
  return page.evaluate(async () => {
    const out = { audio: 0, video: 0, connected: 0, relay: 0, peers: [] };
    for (const pc of window.__pcs) {
      if (pc.connectionState !== "connected") continue;
      out.connected += 1;
      const peer = { audio: 0, video: 0 };
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        if (s.type === "inbound-rtp") peer[s.kind] += s.bytesReceived ?? 0;
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          if (stats.get(pair?.localCandidateId)?.candidateType === "relay") out.relay += 1;
        }
      }
      out.audio += peer.audio;
      out.video += peer.video;
      out.peers.push(peer);
    }
    return out;
  });
}

/** How many bytes of each kind arrive in `ms`, per connected peer. */
async function growth(page, ms = 1_200) {
  const a = await received(page);
  await page.waitForTimeout(ms);
  const b = await received(page);
  return {
    audio: b.audio - a.audio,
    video: b.video - a.video,
    connected: b.connected,
    relay: b.relay,
    peers: b.peers.map((p, i) => ({ audio: p.audio - (a.peers[i]?.audio ?? 0), video: p.video - (a.peers[i]?.video ?? 0) })),
  };
}

/** Waits until audio (and video) arrive and keep arriving from every one of `peers` others. */
async function expectMediaFlowing(page, { video = true, peers = 1 } = {}) {
  await expect
    .poll(
      async () => {
        const g = await growth(page);
        return g.connected === peers && g.peers.every((p) => p.audio > 500 && (!video || p.video > 2_000));
      },
      { timeout: 30_000, intervals: [200] },
    )
    .toBe(true);
}

/** Waits until (almost) nothing of `kind` arrives any more while the other kind still does. */
async function expectStopped(page, kind) {
  const other = kind === "audio" ? "video" : "audio";
  await expect
    .poll(
      async () => {
        const g = await growth(page);
        return g[kind] < 300 && g[other] > 300;
      },
      { timeout: 15_000, intervals: [200] },
    )
    .toBe(true);
}

const callRegion = (page) => page.getByRole("region", { name: "Call", exact: true });
const callButton = (page, name) => page.getByRole("button", { name, exact: true });

test("a video call: both sides send and receive, mute and camera off show in the stats, an ICE restart on a network change, hang up", async ({ stack, newPerson, appUrl }) => {
  const alice = await person(newPerson, appUrl);
  const bob = await person(newPerson, appUrl);
  await chatOfTwo(alice, bob, "call me?", "now is good");

  await callButton(alice, "Video call").click();
  await expect(callRegion(alice)).toContainText(`Calling bob@${DOMAIN}`);
  await expect(callRegion(bob)).toContainText(`alice@${DOMAIN} is calling you (video call)`);
  await expect(messageLog(bob).getByText(`Incoming video call from alice@${DOMAIN}`)).toBeVisible();
  await callButton(bob, "Accept").click();
  await expect(callRegion(alice)).toContainText(`In a video call with bob@${DOMAIN}`);
  await expect(callRegion(bob)).toContainText(`In a video call with alice@${DOMAIN}`);
  await expect(callRegion(bob).getByLabel("Call duration")).toHaveText(/^0:0\d$/);
  await expectMediaFlowing(alice);
  await expectMediaFlowing(bob);
  expect((await growth(bob)).relay, "a direct call uses no relay").toBe(0);

  // Chromium's fake microphone beeps briefly, twice a second: Bob's tile of Alice says she is
  // heard.
  const aliceTile = callRegion(bob).locator(`figure[data-user="alice@${DOMAIN}"] .call-name`);
  await expect(aliceTile).toContainText("speaking", { timeout: 10_000 });
  // What Bob hears decides it: Alice's page stops sending audio without her app knowing (so no
  // "muted" comes), and the tile stops saying "speaking"; her microphone back, it says so again.
  const setAliceMic = (on) =>
    alice.evaluate(async (on) => {
      const audio = window.__pcs.at(-1).getTransceivers().find((t) => t.receiver.track.kind === "audio");
      const sender = audio.sender;
      if (!on) window.__mic = sender.track;
      await sender.replaceTrack(on ? window.__mic : null);
    }, on);
  await setAliceMic(false);
  await expect(aliceTile).not.toContainText("speaking", { timeout: 5_000 });
  await expect(aliceTile).not.toContainText("muted");
  await setAliceMic(true);
  await expect(aliceTile).toContainText("speaking", { timeout: 10_000 });

  // Alice mutes: Bob stops receiving her audio (her video still arrives), is told why, and no
  // longer hears her speak; then her camera.
  await callButton(alice, "Mute").click();
  await expect(callButton(alice, "Mute")).toHaveAttribute("aria-pressed", "true");
  await expectStopped(bob, "audio");
  await expect(aliceTile).toContainText("muted");
  await expect(aliceTile).not.toContainText("speaking", { timeout: 5_000 });
  await callButton(alice, "Mute").click();
  await expect(aliceTile).not.toContainText("muted");
  await callButton(alice, "Camera off").click();
  await expect(callButton(alice, "Camera off")).toHaveAttribute("aria-pressed", "true");
  await expectStopped(bob, "video");
  await expect(aliceTile).toContainText("camera off");

  await callButton(alice, "Camera off").click();
  await expect(aliceTile).not.toContainText("camera off");

  // Alice's network changes: her page restarts ICE (new ICE credentials, offered through MLS)
  // and the call goes on.
  const ufrag = (page) => page.evaluate(() => window.__pcs.at(-1).localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1]);
  const before = await ufrag(alice);
  await alice.evaluate(() => window.dispatchEvent(new Event("online")));
  await expect.poll(() => ufrag(alice)).not.toBe(before);
  await expect.poll(() => alice.evaluate(() => window.__pcs.at(-1).signalingState)).toBe("stable");
  await expectMediaFlowing(bob);
  await expectMediaFlowing(alice);

  await callButton(bob, "Hang up").click();
  await expect(callRegion(bob)).toContainText("Call ended.");
  await expect(callRegion(alice)).toContainText("Call ended.");
  await expect(messageLog(alice).getByText("Video call (you called)")).toBeVisible();
  await expect(messageLog(bob).getByText(`Video call from alice@${DOMAIN}`)).toBeVisible();
  // Everything is closed: no connection left, the camera released.
  await expect.poll(() => received(alice).then((r) => r.connected)).toBe(0);
});

test("a call names people by their display names, as text, and the ringing call adds the address", async ({
  stack,
  newPerson,
  appUrl,
}) => {
  // Markup in a display name stays text.
  const name = "Alice <b>Liddell</b>";
  const alice = await person(newPerson, appUrl);
  const bob = await person(newPerson, appUrl);
  await chatOfTwo(alice, bob, "who is calling?", "tell me");
  await alice.getByRole("button", { name: "Edit profile" }).click();
  const dialog = alice.getByRole("dialog", { name: "Edit profile" });
  await dialog.getByRole("textbox", { name: "Display name" }).fill(name);
  await dialog.getByRole("button", { name: "Save" }).click();
  await expect(dialog).toBeHidden();
  await expect(bob.getByRole("heading", { level: 2, name })).toBeVisible();

  await callButton(alice, "Call").click();
  await expect(callRegion(bob)).toContainText(`${name} (alice@${DOMAIN}) is calling you (voice call)`);
  await callButton(bob, "Accept").click();
  await expect(callRegion(bob)).toContainText(`In a voice call with ${name}.`);
  const tile = callRegion(bob).locator(`figure[data-user="alice@${DOMAIN}"]`);
  await expect(tile.locator(".call-name")).toContainText(name);
  await expect(tile.locator(".call-name")).not.toContainText("alice@");
  await expect(tile.getByLabel(`Call with ${name} (alice@${DOMAIN})`, { exact: true })).toHaveCount(1);
  await expect(callRegion(bob).locator("b")).toHaveCount(0);
  // Bob set no name: Alice's side shows his address.
  await expect(callRegion(alice)).toContainText(`In a voice call with bob@${DOMAIN}.`);
  const bobsTile = callRegion(alice).locator(`figure[data-user="bob@${DOMAIN}"] .call-name`);
  await expect(bobsTile).toContainText(`bob@${DOMAIN}`);

  await callButton(alice, "Hang up").click();
  await expect(callRegion(bob)).toContainText("Call ended.");
});

test("Bob with two devices: both ring, the first to answer takes the call, the other stops ringing", async ({ stack, newPerson, appUrl }) => {
  const alice = await person(newPerson, appUrl);
  const bob = await person(newPerson, appUrl);
  await chatOfTwo(alice, bob, "are you on your laptop?", "both");
  const laptop = await person(newPerson, appUrl);
  await typeLinkCode(laptop, await showLinkCode(bob));
  await expect(laptop.getByText(`Signed in as bob@${DOMAIN}`)).toBeVisible();
  // Joining takes Bob's phone a commit and the laptop a Welcome after the history has moved:
  // under a loaded CI run this once took longer than the default 20 s.
  await expect(laptop.getByRole("list", { name: "Conversations" }).getByRole("button")).toHaveCount(1, { timeout: 45_000 });
  await bob.getByRole("dialog", { name: "Your devices" }).getByRole("button", { name: "Close" }).click();

  await callButton(alice, "Video call").click();
  await expect(callRegion(bob)).toContainText(`alice@${DOMAIN} is calling you (video call)`);
  await expect(callRegion(laptop)).toContainText(`alice@${DOMAIN} is calling you (video call)`);
  await callButton(laptop, "Accept").click();
  await expect(callRegion(bob)).toContainText("Answered on another device.");
  await expect(callRegion(alice)).toContainText(`In a video call with bob@${DOMAIN}`);
  await expectMediaFlowing(alice);
  await expectMediaFlowing(laptop);
  expect((await received(bob)).connected, "the device that did not answer has no connection").toBe(0);
  await callButton(alice, "Hang up").click();
  await expect(callRegion(laptop)).toContainText("Call ended.");
});

test("Bob with three tabs: every tab rings, the tab that answers takes the call, the others stop ringing", async ({ stack, newPerson, appUrl }) => {
  const alice = await person(newPerson, appUrl);
  const bob = await person(newPerson, appUrl);
  await chatOfTwo(alice, bob, "are you there?", "in several tabs");
  // The first tab runs the engine; the others use it.
  const tabs = [bob, await openTab(bob, "bob"), await openTab(bob, "bob")];

  await callButton(alice, "Video call").click();
  for (const tab of tabs) await expect(callRegion(tab)).toContainText(`alice@${DOMAIN} is calling you (video call)`);
  await callButton(tabs[1], "Accept").click();
  for (const tab of [tabs[0], tabs[2]]) await expect(callRegion(tab)).toContainText("Answered on another device.");
  await expect(callRegion(alice)).toContainText(`In a video call with bob@${DOMAIN}`);
  await expect(callRegion(tabs[1])).toContainText(`In a video call with alice@${DOMAIN}`);
  await expectMediaFlowing(alice);
  await expectMediaFlowing(tabs[1]);
  for (const tab of [tabs[0], tabs[2]]) {
    expect((await received(tab)).connected, "a tab that did not answer has no connection").toBe(0);
  }
  await callButton(alice, "Hang up").click();
  await expect(callRegion(tabs[1])).toContainText("Call ended.");

  // Declined in one tab: the others stop ringing too, and Alice is told.
  await expect(callButton(alice, "Call")).toBeEnabled();
  await callButton(alice, "Call").click();
  for (const tab of tabs) await expect(callRegion(tab)).toContainText(`alice@${DOMAIN} is calling you (voice call)`);
  await callButton(tabs[2], "Decline").click();
  for (const tab of [tabs[0], tabs[1]]) await expect(callRegion(tab)).toContainText("Declined on another device.");
  await expect(callRegion(alice)).toContainText(`bob@${DOMAIN} declined the call.`);
});

test("a call whose path goes dead ends after 20 s, in words, on the side still there", async ({ stack, newPerson, appUrl }) => {
  test.setTimeout(90_000);
  const alice = await person(newPerson, appUrl);
  // Bob in a browser process of his own: killing it leaves a dead path, with no goodbye on the
  // wire.
  const server = await chromium.launchServer(LAUNCH);
  const bobsBrowser = await chromium.connect(server.wsEndpoint());
  try {
    const bobsContext = await bobsBrowser.newContext();
    await bobsContext.addInitScript(trackPeerConnections);
    const bob = await bobsContext.newPage();
    await bob.goto(appUrl);
    await chatOfTwo(alice, bob, "stay on the line", "I will");
    await callButton(alice, "Call").click();
    await callButton(bob, "Accept").click();
    await expect(callRegion(alice)).toContainText(`In a voice call with bob@${DOMAIN}`);
    await expectMediaFlowing(alice, { video: false });
    const killedAt = Date.now();
    server.process().kill("SIGKILL");
    await expect(callRegion(alice)).toContainText(`The call with bob@${DOMAIN} failed: the connection was lost.`, {
      timeout: 60_000,
    });
    expect(Date.now() - killedAt, "the call waits out 20 s of a dead path").toBeGreaterThan(20_000);
    await expect.poll(() => received(alice).then((r) => r.connected)).toBe(0);
  } finally {
    await bobsBrowser.close().catch(() => {});
    await server.close().catch(() => {});
  }
});

test("a declined call, and an unanswered one that becomes a missed call", async ({ stack, newPerson, appUrl }) => {
  const alice = await person(newPerson, appUrl);
  const bob = await person(newPerson, appUrl);
  await chatOfTwo(alice, bob, "ring?", "try");

  await callButton(alice, "Call").click();
  await expect(callRegion(bob)).toContainText(`alice@${DOMAIN} is calling you (voice call)`);
  await callButton(bob, "Decline").click();
  await expect(callRegion(alice)).toContainText(`bob@${DOMAIN} declined the call.`);
  await expect(messageLog(alice).getByText("Voice call declined")).toBeVisible();
  await expect(messageLog(bob).getByText(`You declined a voice call from alice@${DOMAIN}`)).toBeVisible();

  // Alice calls again and gives up while it rings.
  await expect(callButton(alice, "Call")).toBeEnabled();
  await callButton(alice, "Call").click();
  await expect(callRegion(bob)).toContainText(`alice@${DOMAIN} is calling you`);
  await callButton(alice, "Hang up").click();
  await expect(callRegion(alice)).toContainText("Call cancelled.");
  await expect(callRegion(bob)).toContainText(`Missed call from alice@${DOMAIN}.`);
  await expect(messageLog(bob).getByText(`Missed voice call from alice@${DOMAIN}`)).toBeVisible();
  await expect(messageLog(alice).getByText("Voice call, no answer")).toBeVisible();
});

test("a call relayed through the TURN server, whose expired credentials are refused", async ({ stack, newPerson, appUrl }) => {
  // `?calls=relay`: iceTransportPolicy "relay", so only TURN relay candidates are used.
  const alice = await person(newPerson, appUrl, "calls=relay");
  const bob = await person(newPerson, appUrl, "calls=relay");
  await chatOfTwo(alice, bob, "over the relay?", "yes");
  await callButton(alice, "Video call").click();
  await callButton(bob, "Accept").click();
  await expect(callRegion(alice)).toContainText(`In a video call with bob@${DOMAIN}`);
  await expectMediaFlowing(alice);
  await expectMediaFlowing(bob);
  const g = await growth(alice);
  expect(g.relay, "the connection's selected pair is a relay candidate").toBe(1);
  await callButton(alice, "Hang up").click();
  await expect(callRegion(bob)).toContainText("Call ended.");

  // The TURN server refuses an allocation whose credentials expired, and grants a fresh one.
  const relayCandidates = (credential) =>
    alice.evaluate(async ({ url, credential }) => {
      const pc = new RTCPeerConnection({ iceServers: [{ urls: url, ...credential }], iceTransportPolicy: "relay" });
      pc.createDataChannel("probe");
      const found = [];
      pc.addEventListener("icecandidate", (e) => e.candidate && found.push(e.candidate.type));
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") resolve();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
        setTimeout(resolve, 8_000);
      });
      pc.close();
      return found.filter((t) => t === "relay").length;
    }, { url: TURN_URL, credential });
  const now = Math.floor(Date.now() / 1000);
  expect(await relayCandidates(turnCredential(now - 60)), "expired: no relay").toBe(0);
  expect(await relayCandidates(turnCredential(now + 600)), "valid: a relay").toBeGreaterThan(0);
});

test("a group call of three: each receives the other two", async ({ stack, newPerson, appUrl }) => {
  const [alice, bob, carol] = [await person(newPerson, appUrl), await person(newPerson, appUrl), await person(newPerson, appUrl)];
  await createAccount(alice, "alice");
  await createAccount(bob, "bob");
  await createAccount(carol, "carol");
  await createGroup(alice, "Team", ["bob", "carol"]);
  // Alice is no contact of theirs: each accepts the group's request (a request does not ring).
  await openConversation(bob, "Team");
  await openConversation(carol, "Team");

  await callButton(alice, "Video call").click();
  await expect(callRegion(bob)).toContainText(`alice@${DOMAIN} is calling you (video call in Team)`);
  await expect(callRegion(carol)).toContainText(`alice@${DOMAIN} is calling you`);
  await callButton(bob, "Accept").click();
  await callButton(carol, "Accept").click();
  for (const page of [alice, bob, carol]) await expectMediaFlowing(page, { peers: 2 });
  await expect(callRegion(carol)).toContainText(/In a video call with (alice@localhost, bob@localhost|bob@localhost, alice@localhost)/);

  // Alice leaves; Bob and Carol stay connected to each other.
  await callButton(alice, "Hang up").click();
  await expectMediaFlowing(bob, { peers: 1 });
  await expectMediaFlowing(carol, { peers: 1 });
  await callButton(bob, "Hang up").click();
  await expect(callRegion(carol)).toContainText("Call ended.");
});

test("a group larger than four explains the limit instead of calling", async ({ stack, newPerson, appUrl }) => {
  const alice = await newPerson();
  await createAccount(alice, "alice");
  for (const name of ["bob", "carol", "dave", "erin"]) await createAccount(await newPerson(), name);
  await createGroup(alice, "Five", ["bob", "carol", "dave", "erin"]);
  await expect(callButton(alice, "Video call")).toBeDisabled();
  await expect(callButton(alice, "Call")).toHaveAccessibleDescription(/at most 4 people/);
});

test("a tampered offer (another DTLS fingerprint in its SDP) does not connect", async ({ stack, newPerson, appUrl }) => {
  const bob = await person(newPerson, appUrl);
  await createAccount(bob, "bob");
  // Eve runs the SDK in her page and relays an offer whose fingerprint is not her certificate's.
  const eve = await person(newPerson, appUrl);
  await eve.evaluate(async () => {
    const m = await import("/pkg/qpq_web.js");
    await m.default();
    const client = await m.QpqClient.register("eve", { transport: "websocket" });
    client.start();
    while (client.connectionState().state !== "online") await new Promise((r) => setTimeout(r, 100));
    window.eve = client;
  });
  // A stranger's chat is a request, which does not ring: Bob has Eve among his contacts.
  await addContact(bob, `eve@${DOMAIN}`);
  await eve.evaluate(async (bobName) => {
    const client = window.eve;
    const conversation = await client.startChat(bobName);
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection();
    stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") resolve();
      pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    });
    // Flip the first byte of the fingerprint.
    const sdp = pc.localDescription.sdp.replace(/(a=fingerprint:sha-256 )([0-9A-F]{2})/g, (_, p, b) =>
      p + ((parseInt(b, 16) ^ 0xff).toString(16).toUpperCase().padStart(2, "0")),
    );
    const call = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const take = async (e) => {
      if (e.type !== "call" || e.signal.call !== call) return;
      if (e.signal.kind === "answer") await pc.setRemoteDescription({ type: "answer", sdp: e.signal.sdp });
      if (e.signal.kind === "candidates") for (const c of e.signal.candidates) await pc.addIceCandidate(c);
    };
    client.onEvent((e) => take(e).catch(() => {}));
    await client.sendCallSignal(conversation, { kind: "offer", call, to: bobName, video: true, sdp });
  }, `bob@${DOMAIN}`);

  await expect(callRegion(bob)).toContainText(`eve@${DOMAIN} is calling you (video call)`);
  await callButton(bob, "Accept").click();
  await expect(callRegion(bob)).toContainText(`The call with eve@${DOMAIN} failed`, { timeout: 30_000 });
  const states = await bob.evaluate(() => window.__pcs.flatMap((pc) => pc.__states));
  expect(states, "Bob's connection never came up").not.toContain("connected");
  expect(states).toContain("failed");
});

test.describe("Bob's app closed: a push wakes his service worker", () => {
  test.use({ nodeArgs: [...TURN_NODE_ARGS, "--push-allow-http", "--push-delay-ms", "500"] });

  /**
   * Alice, and Bob in a persistent profile whose PushManager answers with a subscription of the
   * local push service (as push.spec.js does), allowed to notify, with the fake camera and
   * microphone; they have a chat, Bob has turned notifications on and closed the app. `deliver`
   * hands a push to his service worker, `helper` is a page of the app's origin that is not the
   * app, `chat` the URL a click on a notification opens (the app on the chat with Alice).
   */
  async function bobAsleep(stack, newPerson, appUrl, push, displayName) {
    const { profile, context, sub, problems, page: bob } = await pushableBrowser(stack, push, {
      prefix: "qpq-pw-ring-",
      url: appUrl,
      launch: LAUNCH,
      prepare: (c) => c.addInitScript(trackPeerConnections),
    });
    const alice = await person(newPerson, appUrl);
    await chatOfTwo(alice, bob, "call me later", "I will be away");
    if (displayName) {
      await alice.getByRole("button", { name: "Edit profile" }).click();
      const dialog = alice.getByRole("dialog", { name: "Edit profile" });
      await dialog.getByRole("textbox", { name: "Display name" }).fill(displayName);
      await dialog.getByRole("button", { name: "Save" }).click();
      await expect(dialog).toBeHidden();
      await expect(bob.getByRole("heading", { level: 2, name: displayName })).toBeVisible();
    }
    await bob.getByRole("button", { name: "Enable notifications" }).click();
    await expect(bob.getByRole("status", { name: "Notification status" })).toHaveText("Notifications are on.");
    await expect
      .poll(() => bob.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.active?.state ?? "none"))
      .toBe("activated");
    const chat = new URL(bob.url());
    expect(chat.hash).toMatch(/^#conversation=/);
    const { helper, deliver } = await closeTheApp(stack, context, bob);
    const done = async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    };
    /** Alice calls; the node's push reaches Bob's worker, whose call notification says `body`. */
    const ring = async (body) => {
      await callButton(alice, "Call").click();
      const [wake] = await push.waitFor(sub.id, 1);
      await deliver(wake.plaintext);
      await expect
        .poll(() => callNotifications(helper), { timeout: 30_000 })
        .toEqual([expect.objectContaining({ title: "Incoming call", body })]);
    };
    return { alice, context, sub, problems, helper, deliver, chat: chat.href, done, ring };
  }

  /** The call notifications Bob's service worker shows. */
  const callNotifications = (page) =>
    page.evaluate(async () => {
      const registration = await navigator.serviceWorker.getRegistration("/");
      const shown = (await registration?.getNotifications()) ?? [];
      return shown
        .filter((n) => n.data?.call)
        .map((n) => ({ title: n.title, body: n.body, tag: n.tag, call: n.data.call }));
    });

  test("with no tab open Bob's worker shows the incoming call; the app opened from it rings and he answers", async ({
    stack,
    newPerson,
    appUrl,
  }) => {
    const push = await startPushService();
    const name = "Alice Liddell";
    const b = await bobAsleep(stack, newPerson, appUrl, push, name);
    try {
      const { alice, helper } = b;
      // The worker takes the offer from the queue: it shows who calls, tagged by the call.
      await b.ring(`${name} is calling you (voice call)`);
      const [{ tag, call }] = await callNotifications(helper);
      expect(tag).toBe(`call:${call}`);
      expect(await shownNotifications(helper), "a call is no message").toHaveLength(1);

      // Bob opens the app on the chat (as a click on the notification does) while Alice's call
      // still rings: her offer comes again, and his app rings.
      const bob = await b.context.newPage();
      await bob.goto(b.chat);
      const ringing = `${name} (alice@${DOMAIN}) is calling you (voice call)`;
      await expect(callRegion(bob)).toContainText(ringing, { timeout: 20_000 });
      await expect(callButton(bob, "Accept")).toBeVisible();
      await callButton(bob, "Accept").click();
      await expect(callRegion(bob)).toContainText(`In a voice call with ${name}.`);
      await expectMediaFlowing(bob, { video: false });
      await expectMediaFlowing(alice, { video: false });
      // Taken: the notification is gone, and the call rang once (one entry, one connection).
      await expect.poll(() => callNotifications(bob)).toEqual([]);
      await expect(messageLog(bob).getByText(`Voice call from alice@${DOMAIN}`)).toHaveCount(1);
      expect(await bob.evaluate(() => window.__pcs.length)).toBe(1);

      await callButton(alice, "Hang up").click();
      await expect(callRegion(bob)).toContainText("Call ended.");
      expect(b.problems).toEqual([]);
    } finally {
      await b.done();
      await push.close();
    }
  });

  test("a call that ended while Bob's app was closed: the notification goes, the app shows it missed, no ring", async ({
    stack,
    newPerson,
    appUrl,
  }) => {
    const push = await startPushService();
    const b = await bobAsleep(stack, newPerson, appUrl, push);
    try {
      const { alice, sub, helper, deliver } = b;
      await b.ring(`alice@${DOMAIN} is calling you (voice call)`);

      // Alice gives up. The worker's run acknowledged what it fetched, so the node pushes again
      // for what comes next (her offer again, then her hang-up); each wake-up goes to the
      // worker as the browser would hand it over, and the one after her hang-up closes the
      // notification.
      await callButton(alice, "Hang up").click();
      await expect(callRegion(alice)).toContainText("Call cancelled.");
      let handed = 1;
      await expect
        .poll(
          async () => {
            const wakes = push.received.filter((p) => p.id === sub.id);
            for (; handed < wakes.length; handed++) await deliver(wakes[handed].plaintext);
            return callNotifications(helper);
          },
          { timeout: 30_000 },
        )
        .toEqual([]);
      expect(handed, "the node pushed again after the worker's first run").toBeGreaterThan(1);

      // Bob opens the app: the call is in the chat as missed, and nothing rings, then or later
      // (longer than Alice's offers came again while she called).
      const bob = await b.context.newPage();
      await bob.goto(b.chat);
      await expect(messageLog(bob).getByText(`Missed voice call from alice@${DOMAIN}`)).toHaveCount(1);
      await bob.waitForTimeout(6_000);
      await expect(callButton(bob, "Accept")).toBeHidden();
      await expect(bob.getByText("is calling you")).toHaveCount(0);
      expect(await bob.evaluate(() => window.__pcs.length)).toBe(0);
      expect(b.problems).toEqual([]);
    } finally {
      await b.done();
      await push.close();
    }
  });
});
