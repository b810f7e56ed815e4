// The embeddable chat widget, for other sites: a classic script (no module, no build step) that
// a page adds with
//
//   <script src="https://chat.example/embed.js" data-peer="support@chat.example" async></script>
//
// It defines <qpq-chat>, a button (named by `data-label`, "Open chat" by default) that opens a
// panel holding an iframe of our origin — the origin this script was loaded from — at
// /embed.html?peer=…, where the engine runs. Nothing of the engine is fetched before the first
// open. The script adds one <qpq-chat> to the page unless the page has its own
// (`<qpq-chat data-peer="…" data-label="…">`, placed and styled as the page likes).
//
// The page talks to the element, the element to its iframe with postMessage:
//   element.open(), element.close()          show or hide the chat
//   "unread" event, detail { count }          unread messages while the chat is closed
//   element.unread                            the last count
// Messages are accepted only from our origin and from this element's own iframe; the iframe
// accepts commands only from its parent window's origin (www/embed-app.js).
//
// Its styles live in its shadow root (a constructed stylesheet, which a host page's CSP
// does not govern), so the page's CSS neither breaks nor is broken by them; a page can still
// move or restyle the <qpq-chat> element itself.

(() => {
  if (customElements.get("qpq-chat")) return; // loaded twice

  const script = document.currentScript;
  /** Where the widget's iframe comes from: the origin of this script's URL. */
  const OUR_ORIGIN = new URL(script?.src || location.href).origin;
  const DEFAULT_LABEL = "Open chat";
  /** The iframe says hello as soon as its page runs (before the engine loads). */
  const HELLO_TIMEOUT_MS = 15_000;
  const TAG = "widget"; // every message of ours carries { qpq: TAG }

  const CSS = `
    :host { position: fixed; inset: auto 1rem 1rem auto; z-index: 2147483000;
            font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color-scheme: light; }
    [hidden] { display: none !important; }
    .launcher { display: inline-flex; align-items: center; gap: .5rem; padding: .7rem 1.1rem;
                border: 0; border-radius: 999px; background: #2457c5; color: #fff; font: inherit;
                font-weight: 600; cursor: pointer; box-shadow: 0 2px 10px rgb(0 0 0 / .25); }
    .launcher:focus-visible, .close:focus-visible { outline: 3px solid #f0b45a; outline-offset: 2px; }
    .badge { min-width: 1.4em; padding: 0 .35em; border-radius: 999px; background: #fff; color: #2457c5;
             font-size: .8em; text-align: center; }
    .panel { position: absolute; inset: auto 0 calc(100% + .6rem) auto; display: flex; flex-direction: column;
             width: min(24rem, calc(100vw - 2rem)); height: min(36rem, calc(100vh - 6rem));
             background: #fff; border: 1px solid #dde1e6; border-radius: .8rem; overflow: hidden;
             box-shadow: 0 6px 28px rgb(0 0 0 / .3); }
    .bar { display: flex; align-items: center; justify-content: space-between; gap: .5rem;
           padding: .35rem .5rem .35rem .9rem; background: #2457c5; color: #fff; font-weight: 600; }
    .bar span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .close { border: 0; background: transparent; color: inherit; font: inherit; font-size: 1.3rem;
             line-height: 1; padding: .2rem .45rem; border-radius: .4rem; cursor: pointer; }
    iframe { flex: 1; width: 100%; border: 0; background: #fff; }
    .failed { margin: 0; padding: 1rem; color: #b3261e; }
    .vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  `;

  /** One stylesheet for every <qpq-chat> of the page, or null where constructing one fails. */
  const sheet = (() => {
    try {
      const s = new CSSStyleSheet();
      s.replaceSync(CSS);
      return s;
    } catch {
      return null;
    }
  })();

  /** Builds an element whose text is text (this script never parses HTML). */
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v;
      else if (v === true) e.setAttribute(k, "");
      else if (v !== false && v != null) e.setAttribute(k, String(v));
    }
    e.append(...children);
    return e;
  }

  class QpqChat extends HTMLElement {
    constructor() {
      super();
      this.frame = null;
      this.helloTimer = null;
      this.greeted = false;
      this.isOpen = false;
      this.count = 0;
      this.onMessage = (e) => this.received(e);
    }

    /** The person the chat is with: the element's `data-peer`, else the script tag's. */
    get peer() {
      return (this.dataset.peer || script?.dataset.peer || "").trim();
    }

    /** Unread messages reported by the chat (0 while it is open). */
    get unread() {
      return this.count;
    }

    connectedCallback() {
      if (!this.shadowRoot) this.render();
      window.addEventListener("message", this.onMessage);
    }

    disconnectedCallback() {
      window.removeEventListener("message", this.onMessage);
    }

    render() {
      const root = this.attachShadow({ mode: "open" });
      if (sheet) root.adoptedStyleSheets = [sheet];
      else root.append(el("style", { text: CSS }));
      const label = (this.dataset.label || script?.dataset.label || "").trim() || DEFAULT_LABEL;
      const peer = this.peer;
      this.badge = el("span", { class: "badge", "aria-hidden": "true", hidden: true });
      this.launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "panel" }, label, this.badge);
      this.status = el("span", { class: "vh", role: "status" });
      this.failed = el("p", { class: "failed", role: "alert", hidden: true });
      this.panel = el(
        "section",
        { id: "panel", class: "panel", "aria-label": peer ? `Chat with ${peer}` : "Chat", hidden: true },
        el("div", { class: "bar" }, el("span", { text: peer ? `Chat with ${peer}` : "Chat" }), el("button", { type: "button", class: "close", "aria-label": "Close chat", text: "×" })),
        this.failed,
      );
      this.launcher.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
      this.panel.querySelector(".close").addEventListener("click", () => {
        this.close();
        this.launcher.focus();
      });
      this.panel.addEventListener("keydown", (e) => {
        if (e.key === "Escape") {
          this.close();
          this.launcher.focus();
        }
      });
      root.append(this.panel, this.launcher, this.status);
      if (!peer) this.fail("This chat has no data-peer: the site must say whom it connects you with.");
    }

    /** Opens the chat; the first open creates the iframe, which loads the engine. */
    open() {
      if (!this.shadowRoot) return;
      this.isOpen = true;
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-expanded", "true");
      if (!this.frame && this.peer) this.createFrame();
      this.tell({ type: "visible", visible: true });
      this.frame?.focus();
    }

    /** Hides the chat; it stays connected and counts what arrives. */
    close() {
      if (!this.shadowRoot) return;
      this.isOpen = false;
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.tell({ type: "visible", visible: false });
    }

    createFrame() {
      const url = new URL("/embed.html", OUR_ORIGIN);
      url.searchParams.set("peer", this.peer);
      this.frame = el("iframe", { title: `Chat with ${this.peer}`, src: url.href });
      // The frame learns the page's origin from its referrer where location.ancestorOrigins
      // is missing (Firefox): send at least the origin, whatever the page's own policy.
      this.frame.referrerPolicy = "origin";
      this.panel.append(this.frame);
      this.helloTimer = setTimeout(() => {
        if (!this.greeted) this.fail("The chat could not be loaded on this site. The chat server may not allow this site to embed it.");
      }, HELLO_TIMEOUT_MS);
    }

    fail(text) {
      this.failed.textContent = text;
      this.failed.hidden = false;
    }

    /** Sends a command to our iframe, to our origin only. */
    tell(message) {
      if (this.greeted) this.frame.contentWindow?.postMessage({ qpq: TAG, ...message }, OUR_ORIGIN);
    }

    /** A message from the iframe: only from our origin and this element's own frame. */
    received(e) {
      if (!this.frame || e.source !== this.frame.contentWindow || e.origin !== OUR_ORIGIN) return;
      const m = e.data;
      if (!m || m.qpq !== TAG) return;
      if (m.type === "hello") {
        this.greeted = true;
        clearTimeout(this.helloTimer);
        this.failed.hidden = true;
        this.tell({ type: "visible", visible: this.isOpen });
      } else if (m.type === "unread" && Number.isInteger(m.count) && m.count >= 0) {
        this.setUnread(m.count);
      }
    }

    setUnread(count) {
      if (count === this.count) return;
      this.count = count;
      this.badge.textContent = String(count);
      this.badge.hidden = count === 0;
      this.status.textContent = count === 0 ? "" : count === 1 ? "1 unread message" : `${count} unread messages`;
      this.dispatchEvent(new CustomEvent("unread", { detail: { count } }));
    }
  }

  customElements.define("qpq-chat", QpqChat);

  // The script's own data-peer: one <qpq-chat> for the page, unless it placed its own.
  if (script?.dataset.peer) {
    const add = () => {
      if (!document.querySelector("qpq-chat")) document.body.append(document.createElement("qpq-chat"));
    };
    // Once the page is parsed, so that a <qpq-chat> further down counts.
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", add, { once: true });
    else add();
  }
})();
