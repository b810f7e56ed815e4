// Loads the engine: the WebAssembly build of the Rust client (wasm-bindgen output in /pkg/).
// The .wasm is downloaded here rather than by the bindings so the page can show progress.

const BINDINGS_URL = "/pkg/qpq_web.js";
const WASM_URL = "/pkg/qpq_web_bg.wasm";

/**
 * Downloads and starts the engine.
 * @param {(received: number, total: number | null) => void} onProgress bytes so far and the
 *   total when the server said it (a compressed response has no usable length)
 * @returns {Promise<typeof import("/pkg/qpq_web.js").QpqClient>}
 */
export async function loadEngine(onProgress) {
  // Imported here, not at the top, so that a failure shows as an error on the page.
  let bindings;
  try {
    bindings = await import(BINDINGS_URL);
  } catch {
    throw new Error("the app's engine could not be loaded; check your connection and reload the page");
  }
  let response;
  try {
    response = await fetch(WASM_URL);
  } catch {
    throw new Error("the server cannot be reached; check your connection and reload the page");
  }
  if (!response.ok) {
    throw new Error(`the server did not send the app's engine (HTTP ${response.status}); try again later`);
  }
  const bytes = await readWithProgress(response, onProgress);
  await bindings.default({ module_or_path: bytes });
  return bindings.QpqClient;
}

/**
 * The engine's bindings, started in this context if they were not: for the free functions
 * (`qrCode`) in a tab whose engine runs elsewhere (a SharedWorker, the leading tab).
 */
export async function engineBindings() {
  const bindings = await import(BINDINGS_URL);
  await bindings.default({ module_or_path: WASM_URL });
  return bindings;
}

async function readWithProgress(response, onProgress) {
  const encoded = response.headers.get("Content-Encoding");
  const length = Number(response.headers.get("Content-Length"));
  // With compression the length counts compressed bytes, but the body yields decoded ones.
  const total = !encoded && length > 0 ? length : null;
  if (!response.body) {
    const buf = new Uint8Array(await response.arrayBuffer());
    onProgress(buf.length, buf.length);
    return buf;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  return bytes;
}
