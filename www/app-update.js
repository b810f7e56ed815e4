// Installs the service worker (sw.js: the app works offline) and offers a new version when one
// is ready: the new worker waits, this page shows "Reload to update", and only a click lets
// the new version take over (the page then reloads into it). Until then every tab keeps
// running the version it loaded, served from that version's cache.

import { byId } from "./dom.js";

/** How often an open page asks the server whether a new version is out. */
const CHECK_EVERY_MS = 60 * 60 * 1000;

/**
 * Registers the service worker and watches for new versions. Does nothing where service
 * workers are unavailable: the app still runs, online only.
 */
export async function installOfflineSupport() {
  const sw = navigator.serviceWorker;
  if (!sw) return;
  let asked = false;
  sw.addEventListener("controllerchange", () => {
    // This tab asked: reload into the new version. Another tab asked: this one's code is
    // older than the files now served; offer the reload rather than interrupt the person.
    if (asked) location.reload();
    else offerUpdate(() => location.reload());
  });
  // The worker is a module, and browsers look for updates of a module worker's main script
  // only, not of what it imports (/pkg/precache.js): so the deployment's version goes into
  // the worker's URL, and a new version is a new URL, which the browser installs.
  const register = async () => {
    const version = await deployedVersion();
    if (!version) return sw.getRegistration("/"); // offline: keep what is installed
    return sw.register(`/sw.js?v=${version}`, { scope: "/", type: "module", updateViaCache: "none" });
  };
  let registration;
  try {
    registration = await register();
  } catch {
    return; // e.g. storage disabled: the app still runs online
  }
  if (!registration) return;
  const offerWaiting = (worker) => {
    // The first worker of a page that had none is not an update.
    if (!worker || !sw.controller) return;
    offerUpdate(() => {
      asked = true;
      worker.postMessage({ type: "take-over" });
    });
  };
  // A new worker may be waiting already, or still installing (the browser looked for one
  // when this page was loaded), or be found later.
  const follow = (worker) => {
    if (worker?.state === "installed") offerWaiting(worker);
    else worker?.addEventListener("statechange", () => worker.state === "installed" && offerWaiting(worker));
  };
  follow(registration.waiting);
  follow(registration.installing);
  registration.addEventListener("updatefound", () => follow(registration.installing));
  const check = () => register().catch(() => {}); // offline: try again later
  setInterval(check, CHECK_EVERY_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") check();
  });
}

/** The version of the deployment the server has now (from /pkg/precache.js), or null offline. */
async function deployedVersion() {
  try {
    const response = await fetch("/pkg/precache.js", { cache: "no-store" });
    if (!response.ok) return null;
    return /"version":\s*"([0-9a-f]+)"/.exec(await response.text())?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Shows the update bar; its button runs `onReload` (once). */
function offerUpdate(onReload) {
  const button = byId("update-reload");
  button.disabled = false;
  button.onclick = () => {
    button.disabled = true;
    onReload();
  };
  byId("update").hidden = false;
}
