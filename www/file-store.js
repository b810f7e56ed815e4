// Downloads kept in this browser: each file's chunks as Blob records in IndexedDB (database
// "qpq-files"), written in order as they arrive and checked by the engine. Chromium keeps
// IndexedDB blobs on disk, and the finished file is a Blob made of those records, so a large
// file is never whole in memory; a reload keeps what has arrived, and the next download of
// the same message continues after it.

const DB_NAME = "qpq-files";
const CHUNKS = "chunks";

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

function db() {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(CHUNKS);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("this browser refused to store downloads"));
  });
  return opening;
}

function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function transaction(mode, fn) {
  const t = (await db()).transaction(CHUNKS, mode, { durability: "strict" });
  const complete = new Promise((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error ?? new Error("storing the download was aborted (is the disk full?)"));
  });
  const [result] = await Promise.all([fn(t.objectStore(CHUNKS)), complete]);
  return result;
}

/** Keys of one file's chunks: [file, offset]. */
const range = (file) => IDBKeyRange.bound([file, 0], [file, Number.MAX_SAFE_INTEGER]);

/**
 * The download of message `messageId` in `conversationId`: the sink `downloadFile` writes
 * into, and the finished file.
 */
export class StoredDownload {
  constructor(conversationId, messageId) {
    this.key = `${conversationId}/${messageId}`;
  }

  /** @param {number} offset @param {Uint8Array} bytes */
  write(offset, bytes) {
    return transaction("readwrite", (s) => {
      // Anything after this chunk is stale (a chunk rewritten after an interruption).
      s.delete(IDBKeyRange.bound([this.key, offset], [this.key, Number.MAX_SAFE_INTEGER]));
      s.put(new Blob([bytes]), [this.key, offset]);
    });
  }

  /** @param {number} offset @param {number} length */
  async read(offset, length) {
    const blob = await transaction("readonly", (s) => done(s.get([this.key, offset])));
    if (!(blob instanceof Blob)) throw new Error("part of the download is missing from this browser");
    return new Uint8Array(await blob.slice(0, length).arrayBuffer());
  }

  /** Bytes stored from the start without a gap. */
  async stored() {
    const [keys, blobs] = await transaction("readonly", (s) =>
      Promise.all([done(s.getAllKeys(range(this.key))), done(s.getAll(range(this.key)))]),
    );
    let end = 0;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i][1] !== end) break;
      end += blobs[i].size;
    }
    return end;
  }

  /** The whole file as one Blob (made of the stored parts, not copied into memory). */
  async file(type) {
    const blobs = await transaction("readonly", (s) => done(s.getAll(range(this.key))));
    return new Blob(blobs, { type });
  }

  /** Forgets this download. */
  remove() {
    return transaction("readwrite", (s) => s.delete(range(this.key)));
  }
}

/** The downloads kept here, as "conversation/message" keys. */
export async function storedDownloads() {
  const keys = await transaction("readonly", (s) => done(s.getAllKeys()));
  return [...new Set(keys.map((k) => k[0]))];
}

/** Forgets every download (the account was deleted). */
export async function clearDownloads() {
  await transaction("readwrite", (s) => s.clear());
}
