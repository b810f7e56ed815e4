// Drawing a QR code the engine computed (modules row by row, "1" dark) on a canvas: no markup
// is built from data.

/** Pixels per module. */
const SCALE = 4;
/** The quiet zone around the code, in modules (the standard's minimum). */
const QUIET = 4;

/**
 * Draws `modules` (`size` × `size`) on `canvas`; hides it when there is no code (size 0).
 * @param {HTMLCanvasElement} canvas
 * @param {number} size
 * @param {string} modules
 */
export function drawQr(canvas, size, modules) {
  const side = (size + 2 * QUIET) * SCALE;
  canvas.hidden = size === 0;
  canvas.width = canvas.height = side;
  const ctx = canvas.getContext("2d");
  if (!ctx || size === 0) return;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, side, side);
  ctx.fillStyle = "#000";
  for (let i = 0; i < modules.length; i++) {
    if (modules[i] !== "1") continue;
    const x = (i % size) + QUIET;
    const y = Math.floor(i / size) + QUIET;
    ctx.fillRect(x * SCALE, y * SCALE, SCALE, SCALE);
  }
}
