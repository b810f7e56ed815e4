// Benchmark (not a test): calls between two headless Chromium pages with fake media.
//
//   cd playwright && node bench/calls.mjs [rounds]
//
// Needs what scripts/test-browser.sh builds and coturn (scripts/bench.sh calls installs it).
// One node (SQLite, handing out the TURN server), the gateway, coturn on 127.0.0.1; Alice and
// Bob in a 1:1 chat. Each round Alice presses **Video call**, Bob presses **Accept** as soon as
// it rings, and the round ends when Alice's page has decoded the first video frame from Bob;
// then Alice hangs up. Rounds alternate direct and relayed (`?calls=relay`: TURN only).
// Reported:
//   Call → first remote frame: from the click on Video call (in the page's clock) to the first
//     decoded frame (getStats framesDecoded, polled every 10 ms); it includes Bob's reaction
//     (Playwright clicking Accept once the button shows, a few tens of ms).
//   CPU per call: Chromium's processes' CPU time (CDP SystemInfo.getProcessInfo, every process
//     of the browser: both pages, the GPU and network services) during 10 s of an established
//     direct 640×480 video call, as a share of one core — both ends of the call together.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_LAUNCH } from "../support/chromium.js";
import { startGateway, startServer } from "../support/processes.js";
import { TURN_NODE_ARGS, startTurn } from "../support/turn.js";

const ROUNDS = Number(process.argv[2] ?? 6);
// The test ports, which QPQ_TEST_* move as they move the tests' (to run beside another run).
const PORT = Number(process.env.QPQ_TEST_GATEWAY_PORT ?? 18080);
const HTTPS_PORT = Number(process.env.QPQ_TEST_GATEWAY_HTTPS_PORT ?? 18443);
const NODE_PORT = Number((process.env.QPQ_TEST_NODE_PORTS ?? "17443").split(",")[0]);
const BASE = `http://127.0.0.1:${PORT}`;

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const stats = (xs) => ({ median: Math.round(pct(xs, 50)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)) });

/** In every page: the time of the last click, and the first decoded remote video frame. */
function instrument() {
  document.addEventListener("click", () => (window.__clickAt = performance.now()), true);
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...a) {
      super(...a);
      window.__pcs.push(this);
    }
  };
  window.__firstFrame = async () => {
    for (const deadline = performance.now() + 60_000; performance.now() < deadline; ) {
      for (const pc of window.__pcs) {
        if (pc.connectionState === "closed") continue;
        for (const s of (await pc.getStats()).values()) {
          if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0) return performance.now() - window.__clickAt;
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no remote video frame within 60 s (connections: ${window.__pcs.map((pc) => pc.connectionState)})`);
  };
}

async function person(browser, name, query) {
  const context = await browser.newContext();
  await context.addInitScript(instrument);
  const page = await context.newPage();
  await page.goto(`${BASE}/?transport=websocket${query}`);
  await page.getByRole("textbox", { name: "Username" }).fill(name);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("status", { name: "Connection" }).filter({ hasText: "Online via WebSocket" }).waitFor();
  return page;
}

async function pair(browser, tag, query) {
  const alice = await person(browser, `alice${tag}`, query);
  const bob = await person(browser, `bob${tag}`, query);
  await alice.getByRole("button", { name: "New chat" }).click();
  await alice.getByRole("textbox", { name: "Recipient" }).fill(`bob${tag}`);
  await alice.getByRole("button", { name: "Start chat" }).click();
  await alice.getByRole("heading", { level: 2, name: `bob${tag}@localhost` }).waitFor();
  await alice.getByRole("textbox", { name: "Message", exact: true }).fill("hello");
  await alice.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
  await bob.getByRole("list", { name: "Conversations" }).getByRole("button", { name: new RegExp(`^alice${tag}@localhost`) }).click();
  return { alice, bob };
}

const region = (page) => page.getByRole("region", { name: "Call", exact: true });

/** One call: Call → first remote frame at Alice (ms); `hold` keeps it up for that long first. */
async function oneCall({ alice, bob }, hold = null) {
  await alice.getByRole("button", { name: "Video call", exact: true }).click();
  await bob.getByRole("button", { name: "Accept", exact: true }).click();
  if (process.env.QPQ_BENCH_DEBUG) {
    for (let i = 0; i < 10; i++) {
      console.error(i, await region(alice).textContent(), "|", await region(bob).textContent());
      await alice.waitForTimeout(300);
    }
  }
  const ms = await alice.evaluate(() => window.__firstFrame()).catch(async (e) => {
    const say = async (p) => (await region(p).textContent().catch(() => "")) ?? "";
    throw new Error(`${e.message}; Alice's call: ${await say(alice)}; Bob's: ${await say(bob)}`);
  });
  if (hold) await hold();
  await alice.getByRole("button", { name: "Hang up", exact: true }).click();
  await region(bob).filter({ hasText: "Call ended." }).waitFor();
  await region(alice).filter({ hasText: "Call ended." }).waitFor();
  return ms;
}

const dir = await mkdtemp(path.join(os.tmpdir(), "qpq-bench-calls-"));
const turn = await startTurn();
const node = await startServer({ name: "node", port: NODE_PORT, dataDir: path.join(dir, "node"), logDir: dir, args: TURN_NODE_ARGS });
const gateway = await startGateway({ port: PORT, httpsPort: HTTPS_PORT, nodes: [node], logDir: dir });
const browser = await chromium.launch({
  ...CHROMIUM_LAUNCH,
  headless: true,
  args: [...CHROMIUM_LAUNCH.args, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const direct = await pair(browser, "d", "");
  const relayed = await pair(browser, "r", "&calls=relay");
  const times = { direct: [], relayed: [] };
  for (let i = 0; i < ROUNDS; i++) {
    times.direct.push(await oneCall(direct));
    times.relayed.push(await oneCall(relayed));
    console.error(`round ${i + 1}: direct ${Math.round(times.direct.at(-1))} ms, relayed ${Math.round(times.relayed.at(-1))} ms`);
  }
  // CPU: 10 s inside an established direct call.
  const cdp = await browser.newBrowserCDPSession();
  const cpu = async () => (await cdp.send("SystemInfo.getProcessInfo")).processInfo.reduce((s, p) => s + p.cpuTime, 0);
  let share = 0;
  await oneCall(direct, async () => {
    await direct.alice.waitForTimeout(2_000); // past the start-up
    const [c0, t0] = [await cpu(), performance.now()];
    await direct.alice.waitForTimeout(10_000);
    share = (await cpu() - c0) / ((performance.now() - t0) / 1000);
  });
  console.log(`Call → first remote frame, ms over ${ROUNDS} calls each:`);
  console.log(`  direct   ${JSON.stringify(stats(times.direct))}`);
  console.log(`  relayed  ${JSON.stringify(stats(times.relayed))}  (through coturn, iceTransportPolicy relay)`);
  console.log(`CPU of the browser during an established 1:1 video call (both ends): ${(share * 100).toFixed(0)}% of one core`);
} finally {
  await browser.close();
  await gateway.stop();
  await node.stop("SIGINT");
  await turn.stop();
  await rm(dir, { recursive: true, force: true });
}
