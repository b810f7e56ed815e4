// What the account's other devices call this one, from the user agent: "Chromium on Linux".

/** What to call this device: its browser and system, as the user agent says ("Chromium on Linux"). */
export function deviceName() {
  const ua = navigator.userAgent;
  const browser =
    [
      ["Edg/", "Edge"],
      ["Firefox/", "Firefox"],
      ["Chromium/", "Chromium"],
      ["HeadlessChrome/", "Chromium"],
      ["Chrome/", "Chrome"],
      ["Safari/", "Safari"],
    ].find(([token]) => ua.includes(token))?.[1] ?? "A browser";
  const system =
    [
      ["Android", "Android"],
      ["iPhone", "iOS"],
      ["iPad", "iPadOS"],
      ["Windows", "Windows"],
      ["Mac OS X", "macOS"],
      ["CrOS", "ChromeOS"],
      ["Linux", "Linux"],
    ].find(([token]) => ua.includes(token))?.[1];
  return system ? `${browser} on ${system}` : browser;
}
