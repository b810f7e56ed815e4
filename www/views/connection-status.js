// The connection indicator: online via a transport, connecting, offline with the reason and a
// countdown to the next attempt, or removed (the device left its account: no more attempts).

import { setText } from "../dom.js";
import { asSentence } from "../errors.js";

export class ConnectionStatus {
  /** @param {HTMLElement} el the status element (role=status, named "Connection") */
  constructor(el) {
    this.el = el;
    this.timer = null;
  }

  /** @param {import("/pkg/qpq_web.js").ConnectionView} view */
  show(view) {
    this.stopCountdown();
    this.el.dataset.state = view.state;
    if (view.state === "online") {
      setText(this.el, `Online via ${view.transport ?? "the network"}`);
    } else if (view.state === "connecting") {
      setText(this.el, "Connecting…");
    } else if (view.state === "removed") {
      setText(this.el, asSentence(view.reason ?? "This device was removed from your account."));
    } else {
      this.countdown(asSentence(view.reason ?? "not connected"), view.retryInMs ?? 0);
    }
  }

  countdown(reason, retryInMs) {
    const retryAt = Date.now() + retryInMs;
    const render = () => {
      const seconds = Math.ceil((retryAt - Date.now()) / 1000);
      if (seconds > 0) {
        setText(this.el, `Offline: ${reason} Retrying in ${seconds} s.`);
      } else {
        setText(this.el, `Offline: ${reason} Retrying now…`);
        this.stopCountdown();
      }
    };
    render();
    if (retryAt > Date.now()) this.timer = setInterval(render, 1000);
  }

  stopCountdown() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
