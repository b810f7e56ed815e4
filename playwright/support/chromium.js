// Debian's Chromium: Playwright's own browser downloads cannot work here.

export const CHROMIUM_LAUNCH = {
  executablePath: process.env.QPQ_CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};
