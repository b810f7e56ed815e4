// Calls: at most one at a time on this device, one-to-one or a group mesh of up to
// MAX_PARTICIPANTS people (every participant sends to every other). Signals travel through the
// engine inside the conversation's MLS group (`sendCallSignal`, `{ type: "call" }` events);
// media goes peer to peer over WebRTC, or through the node's TURN server.
//
// A call's life here: the caller offers to every other member; each member's devices ring; the
// first device of a person to answer takes the call (their other devices see the answer and
// stop ringing). In a group, two callees connect to each other too: the one whose name sorts
// first offers, as soon as it has joined and has seen the other's answer.
//
// While nobody has answered, the caller sends its offer again every RESEND_MS (the same
// description, by then with its candidates): a device that was asleep when the first one came
// — its service worker took that one from the queue and only showed a notification — rings
// when the app opens. A device takes a repeated offer as the call it already knows (same call
// id): no second ring, the ring timer goes on; and a call that ended here, or whose entry in
// the conversation says it was answered, declined or missed, does not ring again.
//
// No DOM here: views/call-panel.js draws `state()` whenever `onChange` fires.

import { Peer } from "./peer.js";
import { closeCallNotification } from "../notify.js";

/** Most people in one call (the engine refuses offers in larger conversations). */
export const MAX_PARTICIPANTS = 4;
/** How long a call rings before it counts as missed (the engine's RING_TIMEOUT_MS). */
export const RING_MS = 45_000;
/** How long the end of a call stays on screen. */
const ENDED_MS = 6_000;
/** How often the caller sends its offer again while nobody has answered. */
export const RESEND_MS = 4_500;

/** A fresh call id: 16 random bytes in hex. */
function newCallId() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `?calls=relay` sends calls through TURN only (to try a TURN deployment). */
function relayOnly() {
  return new URLSearchParams(location.search).get("calls") === "relay";
}

export class Calls {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {() => void} onChange
   * @param {(user: string) => string} [nameOf] what to call a person in the sentences this
   *   writes (their display name); their address when not given
   */
  constructor(client, onChange, nameOf = (user) => user) {
    this.client = client;
    this.onChange = onChange;
    this.nameOf = nameOf;
    this.me = client.user();
    this.myDevice = client.deviceId();
    /** The call on this device (ringing, calling or in progress), or null. */
    this.call = null;
    /** How the last call ended, in words, shown for a while. */
    this.ended = null;
    this.endedTimer = null;
    this.sending = Promise.resolve();
    /** The ids of the latest calls that ended on this device, oldest first. */
    this.over = new Set();
  }

  /** What the panel shows. */
  state() {
    return { call: this.call, ended: this.ended };
  }

  // --- what the person does ---------------------------------------------------------------

  /** Calls everyone else in `conversation` (`video`: with the camera). */
  async start(conversation, video) {
    if (this.call) throw new Error("You are already in a call.");
    const c = this.client.conversation(conversation);
    const others = (c?.members ?? []).filter((u) => u !== this.me);
    if (others.length === 0) throw new Error("There is nobody else in this conversation to call.");
    if (others.length + 1 > MAX_PARTICIPANTS) {
      throw new Error(`Calls have at most ${MAX_PARTICIPANTS} people, because everyone sends their audio and video to everyone else.`);
    }
    const call = this.newCall(conversation, newCallId(), video, this.me, "calling");
    call.startedAt = performance.now();
    this.call = call;
    this.changed();
    try {
      await this.prepareMedia(call);
      for (const user of others) {
        const peer = this.newPeer(call, user, null, true);
        await peer.offer();
      }
      call.ringTimer = setTimeout(() => this.noAnswer(call), RING_MS);
      call.resendTimer = setInterval(() => this.resendOffers(call), RESEND_MS);
    } catch (e) {
      this.end(call, `The call could not start: ${e?.message ?? e}`, { hangup: true });
      throw e;
    }
    this.changed();
  }

  /** Takes the ringing call. */
  async accept() {
    const call = this.call;
    if (!call || call.phase !== "ringing") return;
    clearTimeout(call.ringTimer);
    call.phase = "connecting";
    call.startedAt = performance.now();
    closeCallNotification(call.id);
    this.changed();
    try {
      await this.prepareMedia(call);
      const offer = call.offers.get(call.caller);
      const peer = this.newPeer(call, call.caller, offer.device, false);
      peer.pendingRemote.push(...(call.early.get(call.caller) ?? []));
      await peer.answer(offer.signal);
      call.joined.add(this.me);
      // Other callees that joined before us: connect to them too (the first by name offers;
      // an offer they sent us while we rang is answered now).
      for (const [user, o] of call.offers) {
        if (user !== call.caller) await this.takeOffer(call, user, o.device, o.signal);
      }
      for (const user of call.joined) this.meshWith(call, user);
    } catch (e) {
      this.end(call, `The call could not start: ${e?.message ?? e}`, { hangup: true });
    }
    this.changed();
  }

  /** Refuses the ringing call. */
  decline() {
    const call = this.call;
    if (!call || call.phase !== "ringing") return;
    const offer = call.offers.get(call.caller);
    this.post(call, { kind: "decline", call: call.id, to: call.caller, toDevice: offer.device });
    this.end(call, "You declined the call.");
  }

  /** Leaves the call (or, while calling, cancels it). */
  hangUp() {
    if (!this.call) return;
    const call = this.call;
    this.end(call, call.phase === "calling" ? "Call cancelled." : "Call ended.", { hangup: true });
  }

  /** Mutes or unmutes the microphone (the other side receives nothing while muted). */
  setMuted(muted) {
    const call = this.call;
    if (!call?.local) return;
    call.muted = muted;
    const track = call.local.getAudioTracks()[0] ?? null;
    for (const p of call.peers.values()) p.setSending("audio", muted ? null : track);
    this.postMedia(call);
    this.changed();
  }

  /** Turns the camera off or on. */
  setCameraOff(off) {
    const call = this.call;
    if (!call?.local || !call.video) return;
    call.cameraOff = off;
    const track = call.local.getVideoTracks()[0] ?? null;
    if (track) track.enabled = !off;
    for (const p of call.peers.values()) p.setSending("video", off ? null : track);
    this.postMedia(call);
    this.changed();
  }

  /**
   * This device's network changed (it came back online, or the connection type changed): its
   * old ICE paths may be dead before ICE notices, so it restarts ICE on every connection now,
   * with a new offer through MLS that the other side answers.
   */
  networkChanged() {
    for (const p of this.call?.peers.values() ?? []) {
      if (p.state === "connected") p.offer(true).catch(() => p.scheduleRestart(0));
    }
  }

  // --- signals from the engine --------------------------------------------------------------

  /** @param {{conversation: string, from: string, fromDevice: string, signal: import("/pkg/qpq_web.js").CallSignal}} ev */
  async onSignal(ev) {
    const { signal: s, from, fromDevice, conversation } = ev;
    const forMe = !s.to || (s.to === this.me && (!s.toDevice || s.toDevice === this.myDevice));
    const call = this.call?.id === s.call ? this.call : null;
    try {
      if (from === this.me) {
        // Another device of this account answered or declined: stop ringing here.
        if (call?.phase === "ringing" && (s.kind === "answer" || s.kind === "decline")) {
          this.end(call, s.kind === "answer" ? "Answered on another device." : "Declined on another device.");
        }
        if (!call && (s.kind === "answer" || s.kind === "decline")) closeCallNotification(s.call);
        return;
      }
      switch (s.kind) {
        case "offer":
          if (!forMe) return;
          if (s.restart) return void (await call?.peers.get(from)?.answer(s));
          if (!call) return this.ring(conversation, from, fromDevice, s);
          // A repeated offer of the call ringing here: the newer description (it names the
          // caller's candidates) is the one an answer takes; the ring goes on as it was.
          if (call.phase === "ringing") return void call.offers.set(from, { device: fromDevice, signal: s });
          // The caller's offer again after this device took the call: it is being answered.
          if (from === call.caller) return;
          return this.takeOffer(call, from, fromDevice, s);
        case "answer":
          if (!call) return;
          call.joined.add(from);
          if (s.to === this.me && forMe) {
            const peer = call.peers.get(from);
            if (peer) {
              await peer.answered(s, fromDevice);
              if (call.phase === "calling") call.phase = "connecting";
              clearTimeout(call.ringTimer);
            }
          } else if (call.phase !== "ringing") {
            this.meshWith(call, from);
          }
          break;
        case "candidates":
          if (!call || !forMe) return;
          if (call.peers.has(from)) await call.peers.get(from).candidates(s.candidates ?? []);
          else call.early.set(from, [...(call.early.get(from) ?? []), ...(s.candidates ?? [])]);
          break;
        case "decline":
        case "busy": {
          if (!call || !forMe) return;
          const who = this.nameOf(from);
          this.dropPeer(call, from, s.kind === "busy" ? `${who} is in another call.` : `${who} declined the call.`);
          break;
        }
        case "media":
          if (!call) return;
          call.remote.set(from, { muted: !!s.muted, cameraOff: !!s.cameraOff });
          break;
        case "hangup":
          if (!call) return void closeCallNotification(s.call);
          if (call.phase === "ringing" && from === call.caller) {
            return this.end(call, `Missed call from ${this.nameOf(from)}.`);
          }
          call.joined.delete(from);
          this.dropPeer(call, from, "Call ended.");
          break;
      }
    } finally {
      this.changed();
    }
  }

  // --- the call's machinery ------------------------------------------------------------------

  newCall(conversation, id, video, caller, phase) {
    return {
      id,
      conversation,
      video,
      caller,
      phase, // "calling" | "ringing" | "connecting" | "active"
      /** Peers by user. */
      peers: new Map(),
      /** Offers received while ringing (or not yet taken), by user. */
      offers: new Map(),
      /** Candidates that arrived before their peer existed, by user. */
      early: new Map(),
      /** Who answered (joined) this call, as this device saw it. */
      joined: new Set([caller]),
      local: null,
      muted: false,
      cameraOff: false,
      /** What the others said of their microphone and camera ("media" signals), by user. */
      remote: new Map(),
      startedAt: 0,
      connectedAt: 0,
      ringTimer: null,
      /** The caller's timer that sends the offers again while nobody has answered. */
      resendTimer: null,
      problem: "",
    };
  }

  ring(conversation, from, fromDevice, s) {
    // A repeated offer of a call that is over here (this device ended it, or the engine's entry
    // says it was answered, declined or missed — perhaps before this tab opened): no ring.
    if (this.over.has(s.call) || this.settled(conversation, s.call)) return;
    if (this.call) {
      this.post({ conversation }, { kind: "busy", call: s.call, to: from, toDevice: fromDevice });
      return;
    }
    const call = this.newCall(conversation, s.call, !!s.video, from, "ringing");
    call.offers.set(from, { device: fromDevice, signal: s });
    call.ringTimer = setTimeout(() => {
      this.client.callRangOut(conversation, call.id).catch(() => {});
      this.end(call, `Missed call from ${this.nameOf(from)}.`);
    }, RING_MS);
    this.call = call;
  }

  /** Whether the conversation's entry of call `id` says it no longer rings. */
  settled(conversation, id) {
    try {
      const entry = this.client.history(conversation).findLast((m) => m.kind === "call" && m.call?.id === id);
      return !!entry && entry.call.outcome !== "ringing";
    } catch {
      return false; // a conversation the engine does not have: the offer itself says nothing more
    }
  }

  /**
   * The caller's offers again, to everyone who has not answered yet (until the call is
   * answered, or RING_MS after it started).
   */
  resendOffers(call) {
    if (this.call !== call || performance.now() - call.startedAt > RING_MS) return clearInterval(call.resendTimer);
    for (const p of call.peers.values()) {
      if (p.state === "new" && p.pc.signalingState === "have-local-offer") p.repeatOffer().catch(() => {});
    }
  }

  async prepareMedia(call) {
    call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: call.video });
    const servers = await this.client.iceServers().catch(() => ({ iceServers: [] }));
    call.config = { iceServers: servers.iceServers, iceTransportPolicy: relayOnly() ? "relay" : "all" };
  }

  newPeer(call, user, device, offerer) {
    const peer = new Peer({
      user,
      device,
      call: call.id,
      offerer,
      video: call.video,
      config: call.config,
      tracks: call.local.getTracks(),
      stream: call.local,
      send: (signal) => this.send(call, signal),
      onChange: (p) => this.peerChanged(call, p),
    });
    call.peers.set(user, peer);
    return peer;
  }

  /** An offer from another participant of the call we are in: answer it. */
  async takeOffer(call, from, fromDevice, s) {
    if (call.peers.has(from)) return;
    const peer = this.newPeer(call, from, fromDevice, false);
    peer.pendingRemote.push(...(call.early.get(from) ?? []));
    call.early.delete(from);
    await peer.answer(s);
  }

  /** Connects to `user`, who joined: the one of us whose name sorts first offers. */
  meshWith(call, user) {
    if (user === this.me || call.peers.has(user) || !call.joined.has(this.me) || this.me > user) return;
    if (call.peers.size + 1 >= MAX_PARTICIPANTS) return;
    this.newPeer(call, user, null, true).offer().catch(() => {});
  }

  peerChanged(call, peer) {
    if (this.call !== call) return;
    if (peer.state === "connected") {
      call.phase = "active";
      call.connectedAt ||= performance.now();
      // Someone who joins after a mute learns of it.
      if (call.muted || call.cameraOff) this.postMedia(call);
    }
    if (peer.state === "failed") {
      call.problem = `The call with ${this.nameOf(peer.user)} failed: ${peer.problem}.`;
      call.peers.delete(peer.user);
      if (call.peers.size === 0) return this.end(call, call.problem, { hangup: true });
    }
    this.changed();
  }

  dropPeer(call, user, why) {
    const peer = call.peers.get(user);
    if (peer) {
      call.peers.delete(user);
      peer.close(false);
    }
    call.offers.delete(user);
    const waiting = call.phase === "calling" && [...call.peers.values()].some((p) => p.state === "new");
    if (call.peers.size === 0 && !waiting && call.phase !== "ringing") this.end(call, why);
  }

  noAnswer(call) {
    if (this.call === call && call.phase === "calling") this.end(call, "No answer.", { hangup: true });
  }

  /** Ends the call here: closes every connection, stops the camera and microphone. */
  end(call, why, { hangup = false } = {}) {
    if (this.call !== call) return;
    if (hangup) this.post(call, { kind: "hangup", call: call.id });
    clearTimeout(call.ringTimer);
    clearInterval(call.resendTimer);
    this.remember(call.id);
    if (call.phase === "ringing") closeCallNotification(call.id);
    for (const p of call.peers.values()) p.close(false);
    call.local?.getTracks().forEach((t) => t.stop());
    this.call = null;
    this.ended = why;
    clearTimeout(this.endedTimer);
    this.endedTimer = setTimeout(() => {
      this.ended = null;
      this.changed();
    }, ENDED_MS);
    this.changed();
  }

  /** Keeps the ids of the calls that ended here (a later copy of their offer does not ring). */
  remember(id) {
    this.over.add(id);
    if (this.over.size > 32) this.over.delete(this.over.values().next().value);
  }

  /** Sends a signal through the engine, after the ones before it; rejects when it fails. */
  send(call, signal) {
    const conversation = call.conversation;
    const sent = this.sending.then(() => this.client.sendCallSignal(conversation, signal));
    this.sending = sent.catch(() => {});
    return sent;
  }

  /** Tells everyone in the call whether this device's microphone is muted and camera off. */
  postMedia(call) {
    this.post(call, { kind: "media", call: call.id, muted: call.muted, cameraOff: call.cameraOff });
  }

  /** Sends a signal nobody waits for (a failure leaves nothing to do). */
  post(call, signal) {
    this.send(call, signal).catch(() => {});
  }

  changed() {
    this.onChange();
  }

  /** Stops everything (the tab hands the engine over). */
  destroy() {
    if (this.call) this.end(this.call, "Call ended.", { hangup: true });
    clearTimeout(this.endedTimer);
  }
}
