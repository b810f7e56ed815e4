// The desktop's side of system notifications, for the tests that click one. Chromium on Linux
// shows a web page's notifications through the desktop's notification server, on the D-Bus
// session bus (the freedesktop.org Desktop Notifications Specification, 1.2): it calls
// `Notify`, and when the person clicks the notification the server emits `ActionInvoked` with
// the action key "default". Chromium then fires a real `notificationclick` in the service
// worker, one that may focus a window or open one, as a person's click does.
//
// This machine has no desktop, so a test starts its own private session bus (dbus-daemon) and
// serves org.freedesktop.Notifications on it; the browser it launches with `env()` shows its
// notifications there. `click(n)` is what a person's click on the desktop sends. Only the
// desktop is stood in for: the browser's notification bridge, the service worker's click
// handler and the app run as they would for a person.

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { expect } from "@playwright/test";
import dbus from "dbus-next";

const NAME = "org.freedesktop.Notifications";
const OBJECT = "/org/freedesktop/Notifications";

/**
 * One notification as the desktop was asked to show it. Chromium puts the page's origin on the
 * first line of `body`, then a blank line, then the notification's own body.
 * @typedef {{ id: number, summary: string, body: string, actions: string[], closed: boolean }} Shown
 */

/** Starts a session bus and a notification server on it. */
export async function startDesktop() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-desktop-"));
  const address = `unix:path=${path.join(dir, "bus")}`;
  // A session bus with no service directories: nothing is started on demand (Chromium asks
  // for the accessibility bus, which the tests do not need).
  const config = path.join(dir, "session.conf");
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>${address}</listen>
  <policy context="default"><allow send_destination="*"/><allow receive_sender="*"/><allow own="*"/></policy>
</busconfig>
`,
  );
  const daemon = spawn("dbus-daemon", [`--config-file=${config}`, "--nofork", "--nopidfile", "--print-address=1"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let complaint = "";
  daemon.stderr.on("data", (d) => (complaint += d));
  const failed = new Promise((_, reject) => {
    daemon.on("error", (e) => reject(new Error(`dbus-daemon could not start (apt-get install -y dbus): ${e.message}`)));
    daemon.on("exit", (code) => reject(new Error(`dbus-daemon exited (${code}) before it listened: ${complaint}`)));
  });
  const listening = new Promise((resolve) => createInterface({ input: daemon.stdout }).once("line", resolve));
  await Promise.race([listening, failed]);

  /** @type {Shown[]} */
  const shown = [];
  const server = new NotificationServer(shown);
  const bus = dbus.sessionBus({ busAddress: address });
  bus.export(OBJECT, server);
  await bus.requestName(NAME, 0);

  return {
    shown,
    /** What the browser's environment needs to show its notifications here. */
    env() {
      return { ...process.env, DBUS_SESSION_BUS_ADDRESS: address };
    },
    /**
     * Waits for a notification on screen whose body has `text`, and returns it.
     * @param {string} text
     */
    async waitFor(text) {
      await expect.poll(() => shown.some((n) => !n.closed && n.body.includes(text)), { timeout: 30_000 }).toBe(true);
      return shown.find((n) => !n.closed && n.body.includes(text));
    },
    /**
     * Clicks a notification on screen: the desktop's signal for its default action.
     * @param {Shown} n
     */
    click(n) {
      if (n.closed) throw new Error(`notification ${n.id} is no longer on screen`);
      if (!n.actions.includes("default")) throw new Error(`notification ${n.id} cannot be clicked: actions ${n.actions}`);
      server.ActionInvoked(n.id, "default");
    },
    async close() {
      bus.disconnect();
      daemon.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const { Interface } = dbus.interface;

/** org.freedesktop.Notifications as a desktop with clickable notifications serves it. */
class NotificationServer extends Interface {
  /** @param {Shown[]} shown */
  constructor(shown) {
    super(NAME);
    this.shown = shown;
  }

  GetCapabilities() {
    return ["actions", "body"];
  }

  GetServerInformation() {
    return ["qpq-test-desktop", "quicproquo tests", "1", "1.2"];
  }

  Notify(_app, replaces, _icon, summary, body, actions, _hints, _timeout) {
    const old = replaces && this.shown.find((n) => n.id === replaces);
    if (old) old.closed = true;
    const id = old ? replaces : this.shown.length + 1;
    // `actions` alternates keys and labels.
    this.shown.push({ id, summary, body, actions: actions.filter((_, i) => i % 2 === 0), closed: false });
    return id;
  }

  CloseNotification(id) {
    for (const n of this.shown) if (n.id === id && !n.closed) {
      n.closed = true;
      this.NotificationClosed(id, 3);
    }
  }

  ActionInvoked(id, key) {
    return [id, key];
  }

  NotificationClosed(id, reason) {
    return [id, reason];
  }
}

NotificationServer.configureMembers({
  methods: {
    GetCapabilities: { inSignature: "", outSignature: "as" },
    GetServerInformation: { inSignature: "", outSignature: "ssss" },
    Notify: { inSignature: "susssasa{sv}i", outSignature: "u" },
    CloseNotification: { inSignature: "u", outSignature: "" },
  },
  signals: {
    ActionInvoked: { signature: "us" },
    NotificationClosed: { signature: "uu" },
  },
});
