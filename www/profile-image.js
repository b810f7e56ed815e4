// A chosen picture made small enough for a profile, in the page: the centre square of the
// image drawn onto a 128×128 canvas and encoded as WebP (JPEG where the browser cannot encode
// WebP), the quality lowered step by step until it fits the engine's limit. Only these pixels
// leave the page: not the original file, its size or its metadata (a camera's EXIF says where
// and when a photo was taken).

/** The side of a profile picture, in pixels. */
export const PICTURE_SIDE = 128;
/** The engine refuses larger pictures. */
export const PICTURE_MAX_BYTES = 48 * 1024;
/** Tried in order until one fits. */
const QUALITIES = [0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15];
const TYPES = ["image/webp", "image/jpeg"];

/** Said when a file is not a picture this browser can read. */
export class NotAPicture extends Error {
  constructor() {
    super("This file is not a picture. Choose a JPEG, PNG, WebP or GIF image.");
  }
}

/**
 * @param {File} file what the person chose
 * @returns {Promise<{bytes: Uint8Array, type: string}>}
 */
export async function shrinkPicture(file) {
  // An empty type (an unknown extension) may still be an image: decoding decides.
  if (file.type && !file.type.startsWith("image/")) throw new NotAPicture();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new NotAPicture();
  }
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = PICTURE_SIDE;
  const ctx = canvas.getContext("2d");
  const side = Math.min(bitmap.width, bitmap.height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, PICTURE_SIDE, PICTURE_SIDE);
  bitmap.close();
  for (const type of TYPES) {
    // JPEG has no transparency: what was transparent becomes white rather than black.
    if (type === "image/jpeg") {
      ctx.globalCompositeOperation = "destination-over";
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, PICTURE_SIDE, PICTURE_SIDE);
    }
    for (const quality of QUALITIES) {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, type, quality));
      // A browser that cannot encode this type gives PNG instead: try the next type.
      if (!blob || blob.type !== type) break;
      if (blob.size <= PICTURE_MAX_BYTES) return { bytes: new Uint8Array(await blob.arrayBuffer()), type };
    }
  }
  throw new Error("This picture could not be made small enough. Choose another one.");
}
