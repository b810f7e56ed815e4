// A real TURN server for the call tests and benchmarks: Debian's coturn (`turnserver`, which
// scripts/test-browser.sh installs), started on 127.0.0.1 on a port of its own, with the TURN
// REST shared-secret scheme (`use-auth-secret`) the node derives credentials from.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { workerPort } from "./ports.js";

/** The TURN port: beside the gateway's (QPQ_TEST_GATEWAY_PORT moves both). */
export const TURN_PORT = workerPort(process.env.QPQ_TEST_TURN_PORT ?? Number(process.env.QPQ_TEST_GATEWAY_PORT ?? 18080) + 398);
/** The relay ports coturn hands out: a hundred above the TURN port (below the next worker's). */
const RELAY_PORTS = [TURN_PORT + 22, TURN_PORT + 121];
/** The secret shared by the node and coturn (test only). */
export const TURN_SECRET = "qpq-test-turn-secret";
export const TURN_URL = `turn:127.0.0.1:${TURN_PORT}?transport=udp`;

/** The node flags that hand out this TURN server (and it as STUN). */
export const TURN_NODE_ARGS = ["--turn-url", TURN_URL, "--turn-secret", TURN_SECRET, "--stun-url", `stun:127.0.0.1:${TURN_PORT}`];

/** TURN REST credentials as the node makes them, valid until `expiry` (Unix seconds). */
export function turnCredential(expiry, who = "test") {
  const username = `${expiry}:${who}`;
  return { username, credential: createHmac("sha1", TURN_SECRET).update(username).digest("base64") };
}

/** Starts coturn; resolves to `{ stop() }` once it listens. */
export async function startTurn() {
  const bin = process.env.QPQ_TURNSERVER ?? "/usr/bin/turnserver";
  if (!existsSync(bin)) throw new Error(`${bin} is missing (apt-get install -y coturn; scripts/test-browser.sh does)`);
  const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-turn-"));
  const args = [
    "-n", // no configuration file
    "--listening-ip=127.0.0.1",
    "--relay-ip=127.0.0.1",
    `--listening-port=${TURN_PORT}`,
    `--min-port=${RELAY_PORTS[0]}`,
    `--max-port=${RELAY_PORTS[1]}`,
    "--use-auth-secret",
    `--static-auth-secret=${TURN_SECRET}`,
    "--realm=qpq.test",
    "--no-tls",
    "--no-dtls",
    "--no-cli",
    // Both ends of a test call are on this machine.
    "--allow-loopback-peers",
    `--userdb=${path.join(dir, "turndb")}`,
    `--pidfile=${path.join(dir, "turnserver.pid")}`,
    "--log-file=stdout",
    "--simple-log",
  ];
  const log = createWriteStream(path.join(dir, "turnserver.log"));
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk) => {
    log.write(chunk);
    output += chunk.toString();
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 10_000;
  while (!output.includes("Total General servers")) {
    if (child.exitCode !== null) throw new Error(`turnserver exited while starting:\n${output}`);
    if (Date.now() > deadline) throw new Error(`turnserver did not start within 10 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  process.on("exit", () => child.kill("SIGKILL"));
  return {
    /** What coturn logged so far. */
    output: () => output,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
      log.end();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
