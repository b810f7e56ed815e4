// Downloads kept in this browser: each file's chunks as records in IndexedDB (database
// "qpq-files"), written in order as they arrive and checked by the engine. A record is
// `{ length, data }`: the chunk's plaintext length and a Blob of the chunk sealed by the
// engine under this browser's download key (encrypted at rest like the rest of the account,
// and bound to its file and offset). Chromium keeps IndexedDB blobs on disk; a reload keeps
// what has arrived, and the next download of the same message continues after it. The
// plaintext exists only when the file is shown or saved: the engine opens the records one by
// one into a Blob the browser assembles (`file`).

const DB_NAME = "qpq-files";
const CHUNKS = "chunks";

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

function db() {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 2);
    req.onupgradeneeded = () => {
      // Version 1 kept plaintext chunks: drop them (a file is downloaded again on demand).
      if (req.result.objectStoreNames.contains(CHUNKS)) req.result.deleteObjectStore(CHUNKS);
      req.result.createObjectStore(CHUNKS);
    };
    req.onsuccess = () => {
      // A newer version of the app in another tab may need to upgrade the database.
      req.result.onversionchange = () => {
        req.result.close();
        opening = null;
      };
      resolve(req.result);
    };
    req.onerror = () => reject(req.error ?? new Error("this browser refused to store downloads"));
  });
  return opening;
}

function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => {
      // A newer version of the app in another tab may need to upgrade the database.
      req.result.onversionchange = () => {
        req.result.close();
        opening = null;
      };
      resolve(req.result);
    };
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

  /** @param {number} offset @param {number} length @param {Uint8Array} sealed */
  write(offset, length, sealed) {
    return transaction("readwrite", (s) => {
      // Anything after this chunk is stale (a chunk rewritten after an interruption).
      s.delete(IDBKeyRange.bound([this.key, offset], [this.key, Number.MAX_SAFE_INTEGER]));
      s.put({ length, data: new Blob([sealed]) }, [this.key, offset]);
    });
  }

  /** The sealed chunk written at `offset`. @param {number} offset */
  async read(offset) {
    const record = await transaction("readonly", (s) => done(s.get([this.key, offset])));
    if (!(record?.data instanceof Blob)) throw new Error("part of the download is missing from this browser");
    return new Uint8Array(await record.data.arrayBuffer());
  }

  /** The records from the start without a gap, with their offsets. */
  async parts() {
    const [keys, records] = await transaction("readonly", (s) =>
      Promise.all([done(s.getAllKeys(range(this.key))), done(s.getAll(range(this.key)))]),
    );
    const parts = [];
    let end = 0;
    for (let i = 0; i < keys.length; i++) {
      const r = records[i];
      if (keys[i][1] !== end || !(r?.data instanceof Blob) || !Number.isSafeInteger(r.length)) break;
      parts.push({ offset: end, data: r.data });
      end += r.length;
    }
    return { parts, end };
  }

  /** Plaintext bytes stored from the start without a gap. */
  async stored() {
    return (await this.parts()).end;
  }

  /**
   * The whole file as one Blob: each sealed part opened by `open(offset, sealed)` (the
   * engine's `openDownload`) as the browser reads it, so the page never holds all of it.
   * @param {string} type
   * @param {(offset: number, sealed: Uint8Array) => Uint8Array | Promise<Uint8Array>} open
   */
  async file(type, open) {
    const { parts } = await this.parts();
    let i = 0;
    let failure = null;
    const stream = new ReadableStream({
      async pull(controller) {
        if (i === parts.length) return controller.close();
        const { offset, data } = parts[i++];
        try {
          controller.enqueue(await open(offset, new Uint8Array(await data.arrayBuffer())));
        } catch (e) {
          failure = e;
          controller.error(e);
        }
      },
    });
    try {
      const blob = await new Response(stream).blob();
      return new Blob([blob], { type });
    } catch (e) {
      throw failure ?? e;
    }
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
