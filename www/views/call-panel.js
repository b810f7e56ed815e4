// The call on screen: **Call** and **Video call** in the open chat's header, and the region
// named "Call" — ringing (Accept, Decline), calling and in a call (Mute, Camera off, Hang up,
// the duration, a tile per person with who is speaking), and how the last call ended. People
// are named by their display names (the ringing call adds the caller's address, since a
// display name is chosen by its owner and proves nothing), as text only.
//
// Who is speaking: once a second each connection says how loud the other side was over the
// whole second (`Peer.heard`, from the audio statistics' energy), so a short sound between two
// looks still counts; a tile says "speaking" for SPEAKING_HOLD_MS after the last loud second,
// so it does not flicker between words, and never while the person says they are muted.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { Calls, MAX_PARTICIPANTS } from "../calls/calls.js";

/** A mean audio level over a second above this counts as speaking. */
const SPEAKING_LEVEL = 0.02;
/** How long a tile still says "speaking" after the last second someone was heard (ms). */
const SPEAKING_HOLD_MS = 1_500;

export class CallPanel {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {HTMLElement} region the element named "Call"
   * @param {HTMLElement} header the open chat's header (gets the Call buttons)
   * @param {import("../profiles.js").Profiles} profiles the app's display names
   * @param {AbortSignal} signal
   */
  constructor(client, region, header, profiles, signal) {
    this.client = client;
    this.profiles = profiles;
    this.calls = new Calls(client, () => this.render(), (user) => this.profiles.name(user));
    /** When each connection last heard its other side speak (performance.now()). */
    this.heardAt = new WeakMap();
    /** A look at the audio statistics is under way (the next tick does not start another). */
    this.listening = false;
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
      if (b.disabled !== off) b.disabled = off;
      if (tooMany) b.setAttribute("aria-describedby", "call-limit");
      else b.removeAttribute("aria-describedby");
    }
    if (this.limitHint.hidden !== !tooMany) this.limitHint.hidden = !tooMany;
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
    this.renderDuration(call);
    this.renderLabels(call);
  }

  statusText(call, ended) {
    if (!call) return ended ?? "";
    const kind = call.video ? "video call" : "voice call";
    const c = this.client.conversation(call.conversation);
    const title = c?.title ?? "";
    switch (call.phase) {
      case "ringing": {
        const name = this.profiles.name(call.caller);
        const who = name === call.caller ? name : `${name} (${call.caller})`;
        return `${who} is calling you (${kind}${c?.kind === "group" ? ` in ${title}` : ""})`;
      }
      case "calling":
        return `Calling ${title}…`;
      case "connecting":
        return `Connecting ${kind}…`;
      default: {
        const connected = [...call.peers.values()].filter((p) => p.state === "connected");
        const names = connected.map((p) => this.profiles.name(p.user));
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
      const media = h(video ? "video" : "audio", { autoplay: true, playsinline: true });
      media.setAttribute("aria-label", this.mediaLabel(user));
      media.muted = user === "";
      media.srcObject = stream;
      const label = h("span", { class: "call-name", dir: "auto", text: user ? this.profiles.name(user) : "You" });
      const cls = `call-tile${user ? "" : " self"}${video ? "" : " voice"}`;
      const tile = h("figure", { class: cls, dataset: { user } }, media, label);
      this.tiles.append(tile);
      this.media.set(user, { tile, media, label });
    }
  }

  /** The accessible name of a tile's video or audio ("": this device's). */
  mediaLabel(user) {
    if (!user) return "Your camera";
    const name = this.profiles.name(user);
    return name === user ? `Call with ${name}` : `Call with ${name} (${user})`;
  }

  /** How long the call has been connected. */
  renderDuration(call) {
    if (!call || call.phase !== "active" || !call.connectedAt) return;
    const secs = Math.floor((performance.now() - call.connectedAt) / 1000);
    setText(this.duration, `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`);
  }

  /** Each participant's tile: their name, and whether they are speaking, muted, camera off. */
  renderLabels(call) {
    const now = performance.now();
    for (const p of call?.peers.values() ?? []) {
      const tile = this.media.get(p.user);
      if (!tile) continue;
      const name = this.profiles.name(p.user);
      const media = call.remote.get(p.user);
      const heard = p.state === "connected" && now - (this.heardAt.get(p) ?? -Infinity) < SPEAKING_HOLD_MS;
      const speaking = heard && !media?.muted;
      tile.tile.classList.toggle("speaking", speaking);
      setText(tile.label, tileLabel(name, speaking, media));
      const described = this.mediaLabel(p.user);
      if (tile.media.getAttribute("aria-label") !== described) tile.media.setAttribute("aria-label", described);
    }
  }

  /** The duration, and who was heard over the last second. */
  async everySecond() {
    const call = this.calls.call;
    this.renderDuration(call);
    if (!call || call.phase !== "active" || this.listening) return;
    this.listening = true;
    try {
      const connected = [...call.peers.values()].filter((p) => p.state === "connected");
      const levels = await Promise.all(connected.map((p) => p.heard().catch(() => 0)));
      const now = performance.now();
      for (const [i, p] of connected.entries()) if (levels[i] > SPEAKING_LEVEL) this.heardAt.set(p, now);
    } finally {
      this.listening = false;
    }
    if (this.calls.call === call) this.renderLabels(call);
  }
}

/** A participant's name, and what they are doing: speaking, muted, camera off. */
function tileLabel(name, speaking, media) {
  const notes = [];
  if (speaking) notes.push("speaking");
  if (media?.muted) notes.push("muted");
  if (media?.cameraOff) notes.push("camera off");
  return notes.length ? `${name} (${notes.join(", ")})` : name;
}
