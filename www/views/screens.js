// The page shows one screen at a time: loading, a problem, "open in another tab", sign-up, or
// the app itself.

import { byId, setText } from "../dom.js";
import { byteText } from "../format.js";

const SCREENS = ["loading", "problem", "elsewhere", "signup", "unlock", "app"];

/** Shows the screen `name` and hides the others (a page may lack some: the widget's has no unlock). */
export function showScreen(name) {
  for (const s of SCREENS) {
    const el = document.getElementById(`screen-${s}`);
    if (el) el.hidden = s !== name;
  }
  byId(`screen-${name}`);
}

/** Loading progress: bytes received, out of `total` when known. */
export function showLoadProgress(received, total) {
  const bar = byId("loading-progress");
  if (total) {
    bar.max = total;
    bar.value = received;
    setText(byId("loading-text"), `Loading the encryption engine… ${Math.floor((100 * received) / total)}%`);
  } else {
    bar.removeAttribute("value");
    setText(byId("loading-text"), `Loading the encryption engine… ${byteText(received)}`);
  }
}

/** Says, in words, why the app cannot go on. */
export function showProblem(title, text) {
  setText(byId("problem-title"), title);
  setText(byId("problem-text"), text);
  byId("problem-reload").onclick = () => location.reload();
  showScreen("problem");
}

/**
 * Says that another tab has the account, and offers to use it here.
 * @param {"open-elsewhere" | "taken-over"} why
 * @param {() => void} onUseHere
 */
export function showElsewhere(why, onUseHere) {
  if (why === "taken-over") {
    setText(byId("elsewhere-title"), "quicproquo was opened in another tab");
    setText(byId("elsewhere-text"), "This tab has stopped so that only one tab uses your account. Use it here and the other tab stops.");
  } else {
    setText(byId("elsewhere-title"), "quicproquo is open in another tab");
    setText(byId("elsewhere-text"), "Only one tab can use your account at a time. Use it here and the other tab stops.");
  }
  const button = byId("elsewhere-use-here");
  button.disabled = false;
  button.onclick = () => {
    button.disabled = true;
    onUseHere();
  };
  showScreen("elsewhere");
  document.title = "quicproquo (in another tab)";
}
