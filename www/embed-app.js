// The chat inside another site's page (embed.html, framed by www/embed.js): the engine loads
// now, when the person first opened the widget; the account of this browser — of this site,
// see below — opens or is created, and the 1:1 chat with the widget's peer (`?peer=`) starts or
// reopens.
//
// Storage partitioning: browsers key an embedded frame's storage (IndexedDB, localStorage,
// Web Locks, BroadcastChannel) by the top-level site as well as by our origin. The widget on
// shop.example and the widget on blog.example are two accounts, and neither is the account
// of the full app at our own address. Nothing here depends on sharing: each partition signs
// up once, and the chat says who the person is here. Where the browser blocks storage in
// embedded frames altogether (third-party cookies and site data blocked: Chromium's default
// now, and private windows), the chat says so and offers itself in a tab of its own, where it
// is first-party — and so the account of the app at our address.
//
// The host page: commands come only from our parent window, and only from its origin (from
// location.ancestorOrigins, or the referrer embed.js asks for); the unread count goes only to
// that origin. Opened on its own (not framed), the page is simply a compact chat.

import { loadEngine } from "./engine.js";
import { missingFeatures, runSession } from "./engine-session.js";
import { setText, byId } from "./dom.js";
import { describeError } from "./errors.js";
import { EmbedChat } from "./views/embed-chat.js";
import { showLoadProgress, showProblem } from "./views/screens.js";

const TAG = "widget"; // every message of ours carries { qpq: TAG }

/** The link to the page that embeds us: commands in, the unread count out. */
class HostPage {
  constructor() {
    this.origin = embedderOrigin();
    /** Whether the person can see the chat (the widget's panel is open). */
    this.visible = true;
    this.onVisible = () => {};
    if (!this.origin) return;
    window.addEventListener("message", (e) => {
      if (e.source !== window.parent || e.origin !== this.origin) return;
      const m = e.data;
      if (m?.qpq !== TAG || m.type !== "visible" || typeof m.visible !== "boolean") return;
      this.visible = m.visible;
      this.onVisible(m.visible);
    });
    this.send({ type: "hello" });
  }

  /** Tells the embedding page, and no other origin. */
  send(message) {
    if (this.origin) window.parent.postMessage({ qpq: TAG, ...message }, this.origin);
  }
}

/** The origin of the page that frames this one, or null when not framed (or unknown). */
function embedderOrigin() {
  if (window.parent === window) return null;
  const ancestors = location.ancestorOrigins;
  if (ancestors?.length) return ancestors[0] === "null" ? null : ancestors[0];
  try {
    const origin = new URL(document.referrer).origin;
    return origin === "null" ? null : origin;
  } catch {
    return null;
  }
}

/** Whether this frame may not store anything (reading storage throws a SecurityError). */
function storageBlocked() {
  try {
    return !window.sessionStorage || !window.localStorage;
  } catch {
    return true;
  }
}

async function main() {
  const host = new HostPage();
  const peer = new URL(location.href).searchParams.get("peer")?.trim();
  if (!peer) {
    showProblem("No one to chat with", "The page that embeds this chat did not say whom it connects you with (data-peer).");
    return;
  }
  if (storageBlocked()) {
    showProblem(
      "This browser keeps the chat from storing anything here",
      "It blocks the data of sites embedded in other sites (third-party cookies and site data), and the chat needs to keep your keys. Open it in a tab of its own instead.",
    );
    const link = byId("problem-new-tab");
    link.href = location.href;
    link.hidden = false;
    return;
  }
  const missing = missingFeatures();
  if (missing) {
    showProblem("This browser cannot run the chat", missing);
    return;
  }
  setText(byId("signup-title"), `Chat with ${peer}`);
  setText(
    byId("signup-partition"),
    host.origin
      ? `This chat keeps its own account for ${host.origin}, in this browser: it is not your account in the quicproquo app or on other sites.`
      : "",
  );
  /** @type {import("./engine-session.js").StartView} */
  const startChat = (client) => {
    const chat = new EmbedChat(client, peer, host);
    chat.start();
    return chat;
  };
  runSession({ load: () => loadEngine(showLoadProgress), progress: showLoadProgress }, startChat);
}

main().catch((e) => showProblem("Something went wrong", describeError(e)));
