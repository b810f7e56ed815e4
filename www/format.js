// Words and numbers as people read them.

/** A message's delivery state in words (nothing for received messages). */
export function statusText(message) {
  switch (message.status) {
    case "sending":
      return "Sending…";
    case "sent":
      return "Sent";
    case "delivered":
      return message.readBy.length ? `Read by ${message.readBy.length}` : "Delivered";
    case "read":
      return message.readBy.length > 1 ? `Read by ${message.readBy.length}` : "Read";
    case "failed":
      return message.failure ? `Not sent: ${message.failure}` : "Not sent";
    default:
      return "";
  }
}

/** Who received and who read an outgoing message, in words (for its status's tooltip). */
export function readersText(message) {
  const parts = [];
  if (message.readBy.length) parts.push(`Read by ${message.readBy.join(", ")}`);
  if (message.deliveredTo.length) parts.push(`Delivered to ${message.deliveredTo.join(", ")}`);
  return parts.join(". ");
}

/** "5 minutes" for 300 seconds; "Off" for 0. */
export function durationText(secs) {
  if (!secs) return "Off";
  const units = [
    [604800, "week"],
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  for (const [size, unit] of units) {
    if (secs % size === 0) {
      const n = secs / size;
      return `${n} ${unit}${n === 1 ? "" : "s"}`;
    }
  }
  return `${secs} seconds`;
}

/** A clock time for today, a date and time otherwise. */
export function timeText(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** Splits "bob, carol@example.org" into names. */
export function splitNames(text) {
  return text
    .split(/[,;\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** "1.4 MB" */
export function byteText(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** The preview of a conversation's last message: one line of text. */
export function previewText(conversation) {
  const m = conversation.lastMessage;
  if (!m) return "No messages yet";
  const oneLine = m.text.replace(/\s+/g, " ").slice(0, 200);
  if (m.kind === "system") return oneLine;
  if (m.outgoing) return `You: ${oneLine}`;
  // A verified display name when the sender has one (the engine then gives it), else "bob".
  const who = m.senderName && m.senderName !== m.sender ? m.senderName : shortName(m.sender);
  return conversation.kind === "group" ? `${who}: ${oneLine}` : oneLine;
}

/** "bob" for "bob@localhost". */
export function shortName(user) {
  const at = user.lastIndexOf("@");
  return at > 0 ? user.slice(0, at) : user;
}
