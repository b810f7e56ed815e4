// The call on screen: **Call** and **Video call** in the open chat's header, and the region
// named "Call" — ringing (Accept, Decline), calling and in a call (Mute, Camera off, Hang up,
// the duration, a tile per person with who is speaking), and how the last call ended. Names
// are shown as text only.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { Calls, MAX_PARTICIPANTS } from "../calls/calls.js";

/** An audio level above this counts as speaking. */
const SPEAKING_LEVEL = 0.02;

export class CallPanel {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {HTMLElement} region the element named "Call"
   * @param {HTMLElement} header the open chat's header (gets the Call buttons)
   * @param {AbortSignal} signal
   */
  constructor(client, region, header, signal) {
    this.client = client;
    this.calls = new Calls(client, () => this.render());
    this.region = region;
    this.conversation = null;
    this.status = h("p", { class: "call-status", role: "status", "aria-live": "polite" });
    this.duration = h("span", { class: "call-duration", "aria-label": "Call duration" });
    this.tiles = h("div", { class: "call-tiles" });
    /** Video or audio elements by user ("" for this device), kept across redraws. */
    this.media = new Map();
    const button = (text, click, cls = "") => h("button", { type: "button", class: cls, text, on: { click } });
    this.accept = button("Accept", () => this.run(() => this.calls.accept()), "accept");
    this.decline = button("Decline", () => this.calls.decline(), "danger");
    this.mute = button("Mute", () => this.calls.setMuted(!this.calls.call?.muted), "secondary");
    this.camera = button("Camera off", () => this.calls.setCameraOff(!this.calls.call?.cameraOff), "secondary");
    this.hangUp = button("Hang up", () => this.calls.hangUp(), "danger");
    this.error = h("p", { class: "error", role: "alert" });
    this.region.replaceChildren(
      h("div", { class: "call-top" }, this.status, this.duration),
      this.tiles,
      h("div", { class: "call-controls" }, this.accept, this.decline, this.mute, this.camera, this.hangUp),
    );

    this.voiceButton = button("Call", () => this.start(false), "secondary small");
    this.videoButton = button("Video call", () => this.start(true), "secondary small");
    this.limitHint = h("p", {
      id: "call-limit",
      class: "hint call-limit",
      text: `Calls have at most ${MAX_PARTICIPANTS} people: everyone sends their audio and video to everyone else.`,
      hidden: true,
    });
    header.querySelector("#members-toggle").before(this.voiceButton, this.videoButton);
    header.after(this.limitHint, this.error);

    this.tick = setInterval(() => this.everySecond(), 1_000);
    const network = () => this.calls.networkChanged();
    window.addEventListener("online", network, { signal });
    navigator.connection?.addEventListener?.("change", network, { signal });
    signal.addEventListener("abort", () => {
      clearInterval(this.tick);
      this.calls.destroy();
    });
    this.render();
  }

  /** A call event from the engine. */
  onSignal(event) {
    this.calls.onSignal(event).catch((e) => setText(this.error, describeError(e)));
  }

  /** The open conversation changed (null: none): the header buttons follow it. */
  show(conversation) {
    this.conversation = conversation;
    this.renderButtons();
  }

  async start(video) {
    if (!this.conversation) return;
    await this.run(() => this.calls.start(this.conversation.id, video));
  }

  async run(action) {
    setText(this.error, "");
    try {
      await action();
    } catch (e) {
      setText(this.error, describeError(e));
    }
  }

  renderButtons() {
    const c = this.conversation;
    const tooMany = !!c && c.members.length > MAX_PARTICIPANTS;
    const off = !c || !c.active || tooMany || !!this.calls.call || c.members.length < 2;
    for (const b of [this.voiceButton, this.videoButton]) {
      b.disabled = off;
      if (tooMany) b.setAttribute("aria-describedby", "call-limit");
      else b.removeAttribute("aria-describedby");
    }
    this.limitHint.hidden = !tooMany;
  }

  render() {
    const { call, ended } = this.calls.state();
    this.renderButtons();
    this.region.hidden = !call && !ended;
    this.region.dataset.phase = call?.phase ?? "ended";
    const shown = (el, yes) => (el.hidden = !yes);
    shown(this.accept, call?.phase === "ringing");
    shown(this.decline, call?.phase === "ringing");
    const inCall = !!call && call.phase !== "ringing";
    shown(this.mute, inCall);
    shown(this.camera, inCall && call.video);
    shown(this.hangUp, inCall);
    shown(this.duration, inCall && call.phase === "active");
    if (call) {
      this.mute.setAttribute("aria-pressed", String(call.muted));
      this.camera.setAttribute("aria-pressed", String(call.cameraOff));
    }
    setText(this.status, this.statusText(call, ended));
    this.renderTiles(call);
    this.everySecond();
  }

  statusText(call, ended) {
    if (!call) return ended ?? "";
    const kind = call.video ? "video call" : "voice call";
    const c = this.client.conversation(call.conversation);
    const title = c?.title ?? "";
    switch (call.phase) {
      case "ringing":
        return `${call.caller} is calling you (${kind}${c?.kind === "group" ? ` in ${title}` : ""})`;
      case "calling":
        return `Calling ${title}…`;
      case "connecting":
        return `Connecting ${kind}…`;
      default: {
        const names = [...call.peers.values()].filter((p) => p.state === "connected").map((p) => p.user);
        const trouble = call.problem ? ` ${call.problem}` : "";
        return `In a ${kind} with ${names.join(", ") || "nobody yet"}.${trouble}`;
      }
    }
  }

  /** One tile per person: this device's camera (muted), then each participant's media. */
  renderTiles(call) {
    const want = new Map();
    if (call && call.phase !== "ringing" && call.local) want.set("", call.local);
    for (const p of call?.peers.values() ?? []) want.set(p.user, p.remoteStream);
    for (const [user, el] of this.media) {
      if (!want.has(user) || el.media.srcObject !== want.get(user)) {
        el.tile.remove();
        this.media.delete(user);
      }
    }
    for (const [user, stream] of want) {
      if (this.media.has(user)) continue;
      const video = call.video;
      const media = h(video ? "video" : "audio", { autoplay: true, playsinline: true, "aria-label": user ? `Call with ${user}` : "Your camera" });
      media.muted = user === "";
      media.srcObject = stream;
      const label = h("span", { class: "call-name", dir: "auto", text: user || "You" });
      const tile = h("figure", { class: `call-tile${user ? "" : " self"}${video ? "" : " voice"}`, dataset: { user } }, media, label);
      this.tiles.append(tile);
      this.media.set(user, { tile, media, label });
    }
  }

  /** The duration, and who is speaking. */
  async everySecond() {
    const call = this.calls.call;
    if (!call || call.phase !== "active" || !call.connectedAt) return;
    const secs = Math.floor((performance.now() - call.connectedAt) / 1000);
    setText(this.duration, `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`);
    for (const p of call.peers.values()) {
      const tile = this.media.get(p.user);
      if (!tile || p.state !== "connected") continue;
      const level = (await p.received().catch(() => ({ level: 0 }))).level;
      const speaking = level > SPEAKING_LEVEL;
      tile.tile.classList.toggle("speaking", speaking);
      setText(tile.label, tileLabel(p.user, speaking, call.remote.get(p.user)));
    }
  }
}

/** A participant's name, and what they are doing: speaking, muted, camera off. */
function tileLabel(user, speaking, media) {
  const notes = [];
  if (speaking) notes.push("speaking");
  if (media?.muted) notes.push("muted");
  if (media?.cameraOff) notes.push("camera off");
  return notes.length ? `${user} (${notes.join(", ")})` : user;
}
