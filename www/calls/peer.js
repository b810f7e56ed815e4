// One WebRTC connection of a call: this device and one other participant's device. It makes
// or takes the offer, trickles ICE candidates (gathered in small batches, each batch one MLS
// message), restarts ICE when the network changes, and checks, once DTLS is up, that the
// certificate the other side presented is the one its MLS-signalled description named.
//
// The session descriptions it uses come only from MLS signals: nothing here reads an SDP
// from anywhere else.

/** How long candidates are collected before they are sent as one message (ms). */
const CANDIDATE_BATCH_MS = 40;
/** Most candidates in one message (the engine's bound). */
const MAX_CANDIDATES = 32;
/** How long a disconnected connection may stay so before ICE is restarted (ms). */
const RESTART_AFTER_MS = 2_000;
/** How long a restart may take before the connection counts as lost (ms). */
const LOST_AFTER_MS = 20_000;
/** How long the remote certificate may take to show in the statistics (ms). */
const REMOTE_CERTIFICATE_WAIT_MS = 3_000;

export class Peer {
  /**
   * @param {{ user: string, device?: string, call: string, offerer: boolean,
   *   video: boolean, config: RTCConfiguration, tracks: MediaStreamTrack[], stream: MediaStream,
   *   send: (signal: object) => Promise<void>,
   *   onChange: (peer: Peer) => void }} o
   */
  constructor(o) {
    this.user = o.user;
    this.device = o.device ?? null;
    this.call = o.call;
    this.offerer = o.offerer;
    this.send = o.send;
    this.onChange = o.onChange;
    /** "new" | "connecting" | "connected" | "failed" | "closed" */
    this.state = "new";
    /** Why it failed, in words. */
    this.problem = "";
    /** The DTLS fingerprint the other side's MLS-signalled description named. */
    this.fingerprint = null;
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection(o.config);
    this.video = o.video;
    this.senders = o.tracks.map((t) => ({ kind: t.kind, sender: this.pc.addTrack(t, o.stream) }));
    this.pendingRemote = [];
    this.outgoing = [];
    this.flushTimer = null;
    this.restartTimer = null;
    this.lostTimer = null;
    this.connectedAt = 0;
    /** The received audio's totals when `heard()` last looked. */
    this.heardTotals = { energy: 0, seconds: 0 };
    this.pc.addEventListener("icecandidate", (e) => e.candidate && this.queueCandidate(e.candidate));
    this.pc.addEventListener("track", (e) => {
      if (!this.remoteStream.getTracks().includes(e.track)) this.remoteStream.addTrack(e.track);
      this.onChange(this);
    });
    this.pc.addEventListener("connectionstatechange", () => this.connectionChanged());
  }

  /** Whom signals to this peer are addressed to. */
  target() {
    return this.device ? { to: this.user, toDevice: this.device } : { to: this.user };
  }

  /** Makes and sends the offer (`restart`: an ICE restart of a connected call). */
  async offer(restart = false) {
    const offer = await this.pc.createOffer({ iceRestart: restart });
    await this.pc.setLocalDescription(offer);
    await this.send({ kind: "offer", call: this.call, ...this.target(), video: this.video, restart, sdp: this.pc.localDescription.sdp });
    this.flushSoon();
  }

  /**
   * Sends the offer made before again, unanswered so far: the local description as it is now,
   * which by then names the candidates gathered (a device that missed the trickled ones, having
   * been asleep, can connect from it alone).
   */
  async repeatOffer() {
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp || this.pc.signalingState !== "have-local-offer") return;
    await this.send({ kind: "offer", call: this.call, ...this.target(), video: this.video, restart: false, sdp });
  }

  /** Takes the other side's offer (from MLS) and sends the answer. */
  async answer(signal) {
    this.fingerprint = signal.fingerprint;
    await this.pc.setRemoteDescription({ type: "offer", sdp: signal.sdp });
    await this.addPending();
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    await this.send({ kind: "answer", call: this.call, ...this.target(), sdp: this.pc.localDescription.sdp });
    this.flushSoon();
  }

  /** Takes the other side's answer (from MLS). */
  async answered(signal, device) {
    if (this.pc.signalingState !== "have-local-offer") return; // a duplicate, or another device's
    this.device = device;
    this.fingerprint = signal.fingerprint;
    await this.pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
    await this.addPending();
  }

  /** Candidates from the other side (kept until its description is set). */
  async candidates(list) {
    this.pendingRemote.push(...list);
    if (this.pc.remoteDescription) await this.addPending();
  }

  async addPending() {
    const list = this.pendingRemote.splice(0);
    for (const c of list) {
      try {
        await this.pc.addIceCandidate(c);
      } catch {
        // A candidate of an earlier ICE generation: nothing to do with it.
      }
    }
  }

  queueCandidate(c) {
    this.outgoing.push({ sdpMid: c.sdpMid ?? "", sdpMLineIndex: c.sdpMLineIndex ?? 0, candidate: c.candidate });
    // Candidates go out only after our description did (the outbox keeps their order).
    if (this.pc.localDescription && (this.offerer || this.pc.remoteDescription)) this.flushSoon();
  }

  flushSoon() {
    if (this.flushTimer || this.outgoing.length === 0) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      while (this.outgoing.length) {
        const batch = this.outgoing.splice(0, MAX_CANDIDATES);
        this.send({ kind: "candidates", call: this.call, ...this.target(), candidates: batch }).catch(() => {});
      }
    }, CANDIDATE_BATCH_MS);
  }

  /** Sends or stops this device's track of `kind` ("audio" or "video") without renegotiating. */
  setSending(kind, track) {
    for (const s of this.senders) {
      if (s.kind === kind) s.sender.replaceTrack(track).catch(() => {});
    }
  }

  async connectionChanged() {
    const s = this.pc.connectionState;
    if (s === "connected") {
      clearTimeout(this.restartTimer);
      clearTimeout(this.lostTimer);
      this.restartTimer = this.lostTimer = null;
      if (this.state !== "connected") {
        if (!(await this.fingerprintMatches())) {
          this.fail("the other side presented a certificate its call signal did not name");
          return;
        }
        this.connectedAt ||= performance.now();
        this.state = "connected";
      }
    } else if (s === "disconnected" || s === "failed") {
      if (this.state === "connected") this.scheduleRestart(s === "failed" ? 0 : RESTART_AFTER_MS);
      else if (s === "failed") this.fail("the connection could not be made or secured");
    } else if (s === "connecting" && this.state === "new") {
      this.state = "connecting";
    }
    this.onChange(this);
  }

  /** The network changed: the offerer restarts ICE (the other side answers the new offer). */
  scheduleRestart(afterMs) {
    if (this.restartTimer || this.state === "closed") return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.pc.connectionState === "connected" || this.state === "closed") return;
      if (this.offerer) this.offer(true).catch(() => {});
      this.lostTimer ??= setTimeout(() => this.fail("the connection was lost"), LOST_AFTER_MS);
    }, afterMs);
  }

  /**
   * True when the DTLS certificate in use has the fingerprint MLS carried. The statistics may
   * name the certificate a moment after the connection reports "connected": it is looked for
   * for up to REMOTE_CERTIFICATE_WAIT_MS.
   */
  async fingerprintMatches() {
    if (!this.fingerprint) return false;
    const [want, value] = this.fingerprint.split(" ");
    for (const deadline = performance.now() + REMOTE_CERTIFICATE_WAIT_MS; ; ) {
      const stats = await this.pc.getStats();
      for (const s of stats.values()) {
        const cert = s.type === "transport" && s.remoteCertificateId ? stats.get(s.remoteCertificateId) : null;
        if (cert?.fingerprint) {
          return cert.fingerprintAlgorithm?.toLowerCase() === want.toLowerCase() && cert.fingerprint.toUpperCase() === value.toUpperCase();
        }
      }
      if (performance.now() > deadline || this.pc.connectionState === "closed") return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  fail(why) {
    if (this.state === "closed" || this.state === "failed") return;
    this.problem = why;
    this.state = "failed";
    this.close(false);
    this.onChange(this);
  }

  close(notify = true) {
    clearTimeout(this.flushTimer);
    clearTimeout(this.restartTimer);
    clearTimeout(this.lostTimer);
    if (this.state !== "failed") this.state = "closed";
    this.pc.close();
    if (notify) this.onChange(this);
  }

  /**
   * How loud the other side was since the last time this was asked, from 0 to 1: the root mean
   * square of the received audio's level over that interval, from the growth of the inbound
   * stream's `totalAudioEnergy` (level² × seconds) and `totalSamplesDuration`. Every sound
   * played out meanwhile counts, however short: a level read once a second would miss most
   * brief ones. 0 when nothing was played out since (or the stream started over).
   */
  async heard() {
    const receiver = this.pc.getReceivers().find((r) => r.track.kind === "audio");
    if (!receiver) return 0;
    let energy = 0;
    let seconds = 0;
    for (const s of (await receiver.getStats()).values()) {
      if (s.type !== "inbound-rtp") continue;
      energy += s.totalAudioEnergy ?? 0;
      seconds += s.totalSamplesDuration ?? 0;
    }
    const before = this.heardTotals;
    this.heardTotals = { energy, seconds };
    const de = energy - before.energy;
    const dt = seconds - before.seconds;
    return dt > 0 && de >= 0 ? Math.sqrt(de / dt) : 0;
  }
}
