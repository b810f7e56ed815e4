// The page shows one screen at a time: loading, a problem, sign-up, unlock, or the app itself.

import { byId, setText } from "../dom.js";
import { byteText } from "../format.js";

const SCREENS = ["loading", "problem", "signup", "unlock", "app"];

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
