// Which transport the engine uses: WebTransport with a WebSocket fallback ("auto", the
// default), or one forced. A `?transport=` URL parameter wins over the setting kept in
// localStorage; the Transport select in the top bar changes the setting and reloads.

import { deviceName } from "./device-name.js";

const KEY = "qpq.transport";
const MODES = ["auto", "webtransport", "websocket"];

/** The transport for this page: `?transport=`, else the saved setting, else "auto". */
export function chosenTransport() {
  const param = new URL(location.href).searchParams.get("transport");
  if (MODES.includes(param)) return param;
  const saved = localStorage.getItem(KEY);
  return MODES.includes(saved) ? saved : "auto";
}

/** Options for QpqClient.open and QpqClient.register. */
export function engineOptions() {
  return { transport: chosenTransport(), deviceName: deviceName() };
}

/**
 * Shows the current choice in `select`; a change is saved and applied by reloading (the
 * connection is made again with the new transport).
 * @param {HTMLSelectElement} select
 * @param {AbortSignal} signal
 */
export function wireTransportSelect(select, signal) {
  select.value = chosenTransport();
  select.addEventListener(
    "change",
    () => {
      localStorage.setItem(KEY, select.value);
      const url = new URL(location.href);
      url.searchParams.delete("transport");
      location.replace(url);
    },
    { signal },
  );
}
