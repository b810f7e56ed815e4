// Errors in plain words. The engine throws `Error`s with a stable `code` and a sentence;
// people see a sentence, never a code.

/** Words for codes whose sentence needs the person's input to make sense. */
const SENTENCES = {
  user_exists: (input) =>
    input ? `The name “${input}” is already taken. Choose another name.` : "That name is already taken. Choose another name.",
  rate_limited: () => "The server is busy. Wait a moment and try again.",
  internal: () => "The server could not complete this. Try again in a moment.",
  storage: (_, msg) => `This browser could not store your data: ${msg}`,
};

/**
 * A sentence for an error thrown by the engine (or anything else).
 * @param {unknown} error
 * @param {string} [input] what the person typed, when the sentence can name it
 */
export function describeError(error, input) {
  const code = typeof error === "object" && error !== null ? error.code : undefined;
  const raw = error instanceof Error ? error.message : String(error ?? "");
  const message = asSentence(raw || "Something went wrong.");
  const special = code && SENTENCES[code];
  return special ? special(input, message) : message;
}

/** Capitalises the first letter and ends with a full stop. */
export function asSentence(text) {
  const t = text.trim();
  if (!t) return t;
  const first = t[0].toLocaleUpperCase() + t.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}
