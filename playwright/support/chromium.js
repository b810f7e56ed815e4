// Debian's Chromium: Playwright's own browser downloads cannot work here.

import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

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

/**
 * A fresh browser profile (a user-data directory for `launchPersistentContext`) whose cookie
 * setting is "Allow third-party cookies": frames embedded in other sites may keep data,
 * partitioned by the top-level site. Chromium's default blocks them, as private windows do;
 * the widget tests need a browser a person set up so.
 * @returns {Promise<string>} the directory (the caller removes it)
 */
export async function profileAllowingThirdPartyStorage() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-profile-"));
  await mkdir(path.join(dir, "Default"));
  // The settings page's "Allow third-party cookies" (and the older preference for it).
  const prefs = { profile: { cookie_controls_mode: 0, block_third_party_cookies: false } };
  await writeFile(path.join(dir, "Default", "Preferences"), JSON.stringify(prefs));
  return dir;
}
