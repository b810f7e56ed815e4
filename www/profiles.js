// People's profiles (display name, status, picture) as the views show them. The engine keeps
// the profiles, checked against each person's identity key; this module only names people and
// draws their pictures: decoded once per person and version of their profile (the "profile"
// event, or a newer `updatedAt`, makes it decode again; the old bitmap is freed) and painted on
// small canvases. A picture never comes from a URL someone chose: only from bytes the engine
// holds.
//
// Avatars carry no text nodes: a person without a picture gets their initials through CSS
// (`data-initials`, drawn by `::before`), and the avatar is hidden from screen readers, so an
// item's accessible name and text stay the person's name alone.

import { h } from "./dom.js";

export class Profiles {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {AbortSignal} signal frees every decoded picture when the app stops
   */
  constructor(client, signal) {
    this.client = client;
    this.me = client.user();
    /** @type {Map<string, {key: string, bitmap: ImageBitmap | null, ready: Promise<ImageBitmap | null>}>} person → their decoded picture */
    this.pictures = new Map();
    signal.addEventListener("abort", () => {
      for (const p of this.pictures.values()) p.bitmap?.close();
      this.pictures.clear();
    });
  }

  /**
   * A person's profile as this device holds it (this account's own included).
   * @param {string} user
   * @returns {import("/pkg/qpq_web.js").ProfileView | undefined}
   */
  of(user) {
    try {
      return user === this.me ? this.client.profile?.() : this.client.profileOf?.(user);
    } catch {
      // An engine without profiles, or a name it does not know: no profile.
      return undefined;
    }
  }

  /** What to call a person: their verified display name, else their address. */
  name(user) {
    return this.of(user)?.name || user;
  }

  /** The engine says `user`'s profile changed: their picture is decoded afresh when next drawn. */
  changed(user) {
    const held = this.pictures.get(user);
    if (held) held.key = "";
  }

  /**
   * `user`'s picture, decoded once per version of their profile; null when they have none.
   * @param {string} user
   */
  picture(user) {
    const p = this.of(user);
    const key = p?.picture ? String(p.updatedAt) : "";
    const held = this.pictures.get(user);
    if (held && held.key === key && key) return held;
    // Canvases already drawn keep their pixels.
    held?.ready.then((b) => b?.close());
    this.pictures.delete(user);
    if (!key) return null;
    let bytes;
    try {
      bytes = this.client.profilePicture?.(user);
    } catch {
      bytes = undefined;
    }
    if (!bytes?.bytes?.length) return null;
    const entry = { key, bitmap: null, ready: null };
    entry.ready = createImageBitmap(new Blob([bytes.bytes], { type: bytes.type })).then(
      (bitmap) => (entry.bitmap = bitmap),
      () => null, // not decodable here: initials instead
    );
    this.pictures.set(user, entry);
    return entry;
  }

  /**
   * A new avatar (empty until `fill`ed).
   * @param {string} [cls] extra class (size)
   */
  avatar(cls = "") {
    return h("span", { class: cls ? `avatar ${cls}` : "avatar", "aria-hidden": "true" });
  }

  /**
   * Shows in `el` (an avatar) the picture of `user`, else the initials of `label` (their name,
   * or a group's title). The picture is painted on a canvas from the decoded bytes: no URL, so
   * nothing is loaded and nothing needs revoking. (With <img> and a blob: or data: URL,
   * Chromium reported connect-src violations of the page's Content-Security-Policy when the
   * member lists drew the same picture again.) A canvas already showing this version is left
   * alone.
   * @param {HTMLElement} el
   * @param {string | null} user null for a group
   * @param {string} label
   */
  fill(el, user, label) {
    const picture = user ? this.picture(user) : null;
    if (!picture) {
      if (el.firstElementChild) el.replaceChildren();
      el.dataset.initials = initials(label);
      return;
    }
    let canvas = el.firstElementChild;
    if (!(canvas instanceof HTMLCanvasElement)) {
      canvas = h("canvas", { width: "128", height: "128" });
      el.replaceChildren(canvas);
    }
    if (canvas.dataset.picture === picture.key) return;
    canvas.dataset.picture = picture.key;
    const paint = (bitmap) => {
      if (canvas.dataset.picture !== picture.key) return;
      if (!bitmap) {
        el.replaceChildren();
        el.dataset.initials = initials(label);
        return;
      }
      delete el.dataset.initials;
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      try {
        ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      } catch {
        // Freed meanwhile (a newer picture came): the next redraw paints that one.
      }
    };
    if (picture.bitmap) paint(picture.bitmap);
    else picture.ready.then(paint);
  }
}

/** "AL" for "Alice Liddell", "B" for "bob@localhost": at most two letters, whole characters. */
export function initials(label) {
  const local = label.includes("@") && !label.includes(" ") ? label.slice(0, label.lastIndexOf("@")) : label;
  const words = local.split(/[\s._-]+/).filter(Boolean);
  return words
    .slice(0, 2)
    .map((w) => Array.from(w)[0].toLocaleUpperCase())
    .join("");
}
