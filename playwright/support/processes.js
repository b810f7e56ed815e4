// Real processes for the tests: qpq-server nodes and the qpq-gateway, started from the
// binaries that scripts/test-browser.sh builds, each logging to a file.

import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, statSync } from "node:fs";
import dgram from "node:dgram";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every process started here, so none outlives the test run. */
const running = new Set();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/**
 * The newest build of a binary in target/ (debug or release), or $QPQ_BIN_DIR/name.
 * @param {string} name
 */
export function binary(name) {
  const candidates = process.env.QPQ_BIN_DIR
    ? [path.join(process.env.QPQ_BIN_DIR, name)]
    : ["debug", "release"].map((p) => path.join(ROOT, "target", p, name));
  const found = candidates.filter((c) => existsSync(c)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (found.length === 0) {
    throw new Error(`${name} is not built (looked for ${candidates.join(", ")}); run scripts/test-browser.sh`);
  }
  return found[0];
}

/** A started process with its log. */
class Proc {
  constructor(name, bin, args, logPath, { stdin = false } = {}) {
    this.name = name;
    this.logPath = logPath;
    this.output = "";
    const log = createWriteStream(logPath, { flags: "a" });
    log.write(`\n=== ${new Date().toISOString()} ${bin} ${args.join(" ")}\n`);
    const stdio = [stdin ? "pipe" : "ignore", "pipe", "pipe"];
    this.child = spawn(bin, args, { stdio, env: { ...process.env, NO_COLOR: "1" } });
    running.add(this.child);
    const collect = (chunk) => {
      log.write(chunk);
      this.output += chunk.toString();
      if (this.output.length > 1 << 20) this.output = this.output.slice(-(1 << 19));
    };
    this.child.stdout.on("data", collect);
    this.child.stderr.on("data", collect);
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        running.delete(this.child);
        log.end(`=== exited (${signal ?? code})\n`);
        resolve({ code, signal });
      });
    });
    this.alive = true;
    this.exited.then(() => (this.alive = false));
  }

  /** Waits until the output contains `text`; fails if the process exits first. */
  async waitForOutput(text, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes(text)) {
      if (!this.alive) throw new Error(`${this.name} exited while starting:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not say "${text}" within ${timeoutMs} ms:\n${this.output}`);
      await delay(50);
    }
  }

  /** Types `line` on the process's standard input (a process started with `stdin`). */
  type(line) {
    this.child.stdin.write(`${line}\n`);
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs`). */
  async stop(signal = "SIGTERM", graceMs = 10_000) {
    if (!this.alive) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills the process at once, as a crash would. */
  async kill() {
    await this.stop("SIGKILL");
  }
}

/**
 * Starts a qpq-server node.
 * @param {{name: string, port: number, dataDir: string, logDir: string, database?: string, args?: string[]}} o
 */
export async function startServer({ name, port, dataDir, logDir, database, args: extra = [] }) {
  await ensureUdpPortFree(port, name);
  const args = ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--log", "info", ...extra];
  if (database) args.push("--database", database);
  const proc = new Proc(name, binary("qpq-server"), args, path.join(logDir, `${name}.log`));
  await proc.waitForOutput("qpq-server listening");
  return Object.assign(proc, { addr: `127.0.0.1:${port}`, cert: path.join(dataDir, "cert.der") });
}

/**
 * Starts the native client `qpq` against `node` with its state in `dir/NAME.state` and
 * `args` (`--register NAME` or `--link CODE`); type commands with `type`.
 * @param {{name: string, node: {addr: string, cert: string}, dir: string, args: string[]}} o
 */
export function startNativeClient({ name, node, dir, args }) {
  const all = ["--server", node.addr, "--cert", node.cert, "--state", path.join(dir, `${name}.state`), ...args];
  return new Proc(name, binary("qpq"), all, path.join(dir, `${name}.log`), { stdin: true });
}

/**
 * Starts the gateway in front of `nodes` and waits until it reports at least one node up.
 * It serves plain HTTP on `port` and HTTPS (TCP) plus HTTP/3 and WebTransport (UDP) on
 * `httpsPort`; `args` are extra flags (e.g. `--no-http3`). It serves the repository's www/ and
 * pkg/ unless `www` and `pkg` name other copies (another deployment of the app).
 * @param {{port: number, httpsPort: number, nodes: {addr: string, cert: string}[], logDir: string,
 *   args?: string[], www?: string, pkg?: string}} o
 */
export async function startGateway({ port, httpsPort, nodes, logDir, args: extra = [], www, pkg }) {
  await ensureTcpPortFree(port, "the gateway");
  await ensureTcpPortFree(httpsPort, "the gateway's HTTPS");
  await ensureUdpPortFree(httpsPort, "the gateway's HTTP/3");
  const args = [
    "--listen", `127.0.0.1:${port}`,
    "--https-listen", `127.0.0.1:${httpsPort}`,
    "--www", www ?? path.join(ROOT, "www"),
    "--pkg", pkg ?? path.join(ROOT, "pkg"),
    "--node-retry-max-ms", "1000",
    "--shutdown-grace-secs", "2",
    "--log", "info",
    // The tests read which node carries how many sessions from /healthz.
    "--healthz-details",
  ];
  for (const n of nodes) args.push("--node", n.addr, "--node-cert", n.cert);
  args.push(...extra);
  const proc = new Proc("gateway", binary("qpq-gateway"), args, path.join(logDir, "gateway.log"));
  const url = `http://127.0.0.1:${port}`;
  const gateway = Object.assign(proc, { url, health: () => health(url) });
  await waitUntil(async () => {
    if (!proc.alive) throw new Error(`the gateway exited while starting:\n${proc.output}`);
    const h = await health(url).catch(() => null);
    return h?.status === "ok";
  }, 20_000, "the gateway to report a node up");
  return gateway;
}

/** The gateway's /healthz: `{status, nodes: [{addr, up, sessions}]}`. */
export async function health(url) {
  const res = await fetch(`${url}/healthz`);
  return res.json();
}

/** Runs psql as the postgres user (trust authentication on 127.0.0.1). */
export function psql(sql) {
  const r = spawnSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`psql failed (${sql}): ${r.stderr || r.error}`);
  return r.stdout;
}

/** Polls `check` until it returns true. */
export async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(100);
  }
}

function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function ensureTcpPortFree(port, who) {
  const free = await new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
  if (!free) throw new Error(`TCP port ${port} (for ${who}) is in use; stop whatever listens there`);
}

async function ensureUdpPortFree(port, who) {
  const free = await new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.once("error", () => resolve(false));
    s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
  if (!free) throw new Error(`UDP port ${port} (for ${who}) is in use; stop whatever listens there`);
}

/** The last `lines` lines of a log file, for failure reports. */
export function tail(file, lines = 80) {
  if (!existsSync(file)) return "";
  return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}
