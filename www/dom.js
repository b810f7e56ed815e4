// A tiny element builder. Everything that comes from data becomes a Text node: this module
// has no way to parse HTML, on purpose.

/**
 * Creates an element.
 * @param {string} tag
 * @param {Record<string, unknown>} [props] attributes; `class`, `text` (textContent),
 *   `dataset`, `on` (event listeners) and boolean attributes (`hidden`, `disabled`) are
 *   handled specially; `null`/`undefined`/`false` values are skipped.
 * @param {...(Node|string|null|undefined|false)} children strings become Text nodes
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = String(value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") {
      for (const [type, listener] of Object.entries(value)) el.addEventListener(type, listener);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

/** The element with this id; throws when the page lacks it (a broken index.html). */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no element #${id}`);
  return el;
}

/** Sets an element's text, as text. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Makes the children of `list` the items of `conversations`, in that order: the item of a
 * conversation drawn before is kept (`items`, by id; its `li` moved where needed), a new one
 * made with `create(id)`, each refreshed with `update(item, c)`, and the items of
 * conversations no longer there removed.
 * @template {{li: HTMLLIElement}} T
 * @param {HTMLElement} list
 * @param {Map<string, T>} items
 * @param {Array<{id: string}>} conversations
 * @param {(id: string) => T} create
 * @param {(item: T, c: any) => void} update
 */
export function renderById(list, items, conversations, create, update) {
  const seen = new Set();
  conversations.forEach((c, position) => {
    seen.add(c.id);
    let item = items.get(c.id);
    if (!item) {
      item = create(c.id);
      items.set(c.id, item);
    }
    update(item, c);
    const at = list.children[position];
    if (at !== item.li) list.insertBefore(item.li, at ?? null);
  });
  for (const [id, item] of items) {
    if (!seen.has(id)) {
      item.li.remove();
      items.delete(id);
    }
  }
}
