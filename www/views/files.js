// Files in the chat: picking and uploading them (with progress and Cancel), and the body of a
// file message (Download / Resume / Save, progress, an image preview). Names and types come
// from other people: they are shown as text only, and a name is never used as a path.

import { h, setText } from "../dom.js";
import { describeError } from "../errors.js";
import { byteText } from "../format.js";
import { StoredDownload, storedDownloads } from "../file-store.js";

/** Images up to this size are fetched on sight for a preview. */
const PREVIEW_MAX_BYTES = 8 * 1000 * 1000;
/** Media types shown as a picture (drawn by an <img>, which runs nothing). */
const PREVIEW_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;

export class FileTransfers {
  /**
   * @param {import("/pkg/qpq_web.js").QpqClient} client
   * @param {{ input: HTMLInputElement, uploads: HTMLElement }} els the file input and the
   *   list that shows uploads in progress
   * @param {AbortSignal} signal ends the listeners (the app is being torn down)
   */
  constructor(client, els, signal) {
    this.client = client;
    this.input = els.input;
    this.uploads = els.uploads;
    this.conversationId = null;
    /** Downloads running in this page, by message: {progress, abort, listeners}. */
    this.downloads = new Map();
    /** Object URLs of finished pictures, by message (revoked when the app goes). */
    this.urls = new Map();
    this.pruning = null;
    this.input.addEventListener("change", () => this.picked(), { signal });
    this.prune();
    signal.addEventListener("abort", () => {
      clearTimeout(this.pruning);
      for (const d of this.downloads.values()) d.abort.abort();
      for (const url of this.urls.values()) URL.revokeObjectURL(url);
    });
  }

  /**
   * Forgets downloads whose message is gone (deleted for everyone, disappeared): what the
   * engine no longer shows does not stay on this device either. Runs soon after it is asked,
   * once for a burst of asks.
   */
  prune() {
    if (this.pruning) return;
    this.pruning = setTimeout(async () => {
      try {
        for (const key of await storedDownloads()) {
          const [conversationId, messageId] = key.split("/");
          if (this.downloads.has(key) || this.client.hasFile(conversationId, messageId)) continue;
          await new StoredDownload(conversationId, messageId).remove();
          const url = this.urls.get(key);
          if (url) URL.revokeObjectURL(url);
          this.urls.delete(key);
        }
      } catch {
        // Storage trouble shows when a download is next used; pruning tries again later.
      } finally {
        this.pruning = null;
      }
    }, 200);
  }

  /** The conversation files are sent to; shows only its uploads. */
  show(conversationId, active) {
    this.conversationId = conversationId;
    // Only on change: setting an element's state, even to what it is, makes the page restyle it.
    if (this.input.disabled === active) this.input.disabled = !active;
    for (const row of this.uploads.children) {
      const hidden = row.dataset.conversation !== conversationId;
      if (row.hidden !== hidden) row.hidden = hidden;
    }
  }

  picked() {
    const id = this.conversationId;
    const files = [...(this.input.files ?? [])];
    this.input.value = "";
    if (!id) return;
    for (const file of files) this.upload(id, file);
  }

  /** Uploads one file into conversation `id`, showing its progress until it is sent. */
  async upload(id, file) {
    const abort = new AbortController();
    const name = file.name || "file";
    const progress = h("progress", { max: "1", value: "0", "aria-label": `Upload of ${name}` });
    const state = h("span", { class: "transfer-state", text: `Encrypting and sending · ${byteText(file.size)}` });
    const cancel = h("button", {
      type: "button",
      class: "link",
      "aria-label": `Cancel upload of ${name}`,
      text: "Cancel",
      on: { click: () => abort.abort() },
    });
    const row = h(
      "li",
      { class: "upload", dataset: { conversation: id } },
      h("span", { class: "file-name", dir: "auto", text: name }),
      progress,
      state,
      cancel,
    );
    this.uploads.append(row);
    try {
      await this.client.sendFile(id, file, {
        signal: abort.signal,
        onProgress: (done, total) => {
          progress.value = total ? done / total : 1;
          setText(state, `${byteText(done)} of ${byteText(total)}`);
        },
      });
      row.remove();
    } catch (e) {
      progress.remove();
      cancel.remove();
      row.classList.add("failed");
      setText(state, abort.signal.aborted ? "Upload cancelled." : `Not sent: ${describeError(e)}`);
      row.append(h("button", { type: "button", class: "link", text: "Dismiss", on: { click: () => row.remove() } }));
    }
  }

  /**
   * The body of a file message: its name and size, and what can be done with it.
   * @param {string} conversationId
   * @param {import("/pkg/qpq_web.js").MessageView} m a message of kind "file"
   */
  body(conversationId, m) {
    const f = m.file;
    const key = `${conversationId}/${m.id}`;
    const button = h("button", { type: "button", class: "file-action", text: "Download" });
    const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": `Download of ${f.name}` });
    const cancel = h("button", { type: "button", class: "link", hidden: true, text: "Cancel", "aria-label": `Cancel download of ${f.name}` });
    const error = h("p", { class: "error", role: "alert" });
    const preview = h("div", { class: "file-preview" });
    const el = h(
      "div",
      { class: "file", dataset: { message: m.id } },
      h("span", { class: "file-name", dir: "auto", text: f.name }),
      h("span", { class: "file-size", text: `${byteText(f.size)} · ${f.mime}` }),
      preview,
      h("span", { class: "file-controls" }, button, progress, cancel),
      error,
    );
    const store = new StoredDownload(conversationId, m.id);

    const label = async () => {
      const stored = await store.stored().catch(() => 0);
      if (stored >= f.size && f.size > 0) {
        button.textContent = "Save";
        button.setAttribute("aria-label", `Save ${f.name}`);
      } else if (stored > 0) {
        const pct = Math.floor((stored / f.size) * 100);
        button.textContent = `Resume download (${pct}%)`;
        button.setAttribute("aria-label", `Resume download of ${f.name} (${pct}%)`);
      } else {
        button.textContent = "Download";
        button.setAttribute("aria-label", `Download ${f.name}`);
      }
      return stored;
    };

    // The plaintext is assembled only to show a picture (kept while the app runs) or to save
    // the file (let go once the browser has it).
    const open = (offset, sealed) => this.client.openDownload(conversationId, m.id, offset, sealed);
    const finished = async (save) => {
      button.textContent = "Save";
      button.setAttribute("aria-label", `Save ${f.name}`);
      const showPreview = PREVIEW_TYPES.test(f.mime) && f.size <= PREVIEW_MAX_BYTES;
      if (!save && !(showPreview && !preview.firstChild)) return;
      let url = this.urls.get(key);
      if (!url) {
        url = URL.createObjectURL(await store.file(f.mime, open));
        if (showPreview) this.urls.set(key, url);
      }
      if (showPreview && !preview.firstChild) preview.append(h("img", { src: url, alt: f.name }));
      if (save) {
        const a = h("a", { href: url, download: f.name, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        // The browser reads the file from the URL after the click returns.
        if (!showPreview) setTimeout(() => URL.revokeObjectURL(url), 60_000);
      }
    };

    const run = async (save) => {
      setText(error, "");
      let d = this.downloads.get(key);
      if (!d) {
        const abort = new AbortController();
        d = { abort, listeners: new Set(), promise: null };
        this.downloads.set(key, d);
        d.promise = this.client
          .downloadFile(conversationId, m.id, store, {
            signal: abort.signal,
            onProgress: (done, total) => {
              for (const l of d.listeners) l(done, total);
            },
          })
          .finally(() => this.downloads.delete(key));
      }
      const listener = (done, total) => {
        progress.value = total ? done / total : 1;
      };
      d.listeners.add(listener);
      button.hidden = true;
      progress.hidden = false;
      cancel.hidden = false;
      cancel.onclick = () => d.abort.abort();
      try {
        await d.promise;
        await finished(save);
      } catch (e) {
        if (e?.code === "damaged_download") {
          // The sealed copy here does not open (the disk damaged it, or something altered it):
          // it is dropped, and the next Download fetches the file again.
          await store.remove().catch(() => {});
          setText(error, "The copy of this file kept in this browser was damaged, so it was removed. Download it again.");
        } else {
          setText(error, d.abort.signal.aborted ? "Download cancelled." : `Could not download: ${describeError(e)}`);
        }
        await label();
      } finally {
        d.listeners.delete(listener);
        button.hidden = false;
        progress.hidden = true;
        cancel.hidden = true;
      }
    };

    button.addEventListener("click", () => run(true));
    label().then((stored) => {
      const complete = stored >= f.size && f.size > 0;
      if (this.downloads.has(key)) run(false);
      else if (PREVIEW_TYPES.test(f.mime) && f.size <= PREVIEW_MAX_BYTES && (complete || stored === 0)) run(false);
    });
    return el;
  }
}
