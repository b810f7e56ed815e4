// The SDK as someone else's project gets it: pkg/ packed with `npm pack`, the tarball installed
// into a scratch project (no registry involved), the README's example type-checked against the
// installed declarations and then run — importing the package by its name — in pages served
// from another origin than the gateway's, which lets it in with --allow-origin.

import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { ROOT } from "../support/processes.js";
import { BASE_URL, expect, test, watchForPageProblems } from "../support/stack.js";

const PAGE_PORT = 18090;
const PAGE_ORIGIN = `http://127.0.0.1:${PAGE_PORT}`;
const WEBSOCKET_URL = `${BASE_URL.replace("http:", "ws:")}/ws`;
/** The placeholder URL in the README's example. */
const EXAMPLE_URL = "wss://chat.example/ws";

test.use({ gatewayArgs: ["--allow-origin", PAGE_ORIGIN] });

/** Runs a command, failing with its output. */
function run(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${e.stdout}\n${e.stderr}`);
  }
}

/** The first ```js block of a Markdown text. */
function firstJsBlock(markdown) {
  const m = markdown.match(/```js\n([\s\S]*?)```/);
  if (!m) throw new Error("the README has no ```js example");
  return m[1];
}

const MIME = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** A static file server for `dir` on 127.0.0.1:`port` (no directory listing, no `..`). */
async function serve(dir, port) {
  const server = http.createServer(async (req, res) => {
    const file = path.join(dir, decodeURIComponent(new URL(req.url, PAGE_ORIGIN).pathname));
    if (!file.startsWith(dir + path.sep)) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": MIME[path.extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
  return server;
}

test("the packed SDK installs, type-checks and chats from a page of another origin", async ({ stack, browser }) => {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "qpq-sdk-"));
  let server;
  const contexts = [];
  try {
    // Pack pkg/ and install the tarball into a fresh project, offline.
    const version = JSON.parse(await readFile(path.join(ROOT, "pkg", "package.json"), "utf8")).version;
    const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", scratch], path.join(ROOT, "pkg")));
    expect(packed.filename).toBe(`quicproquo-web-${version}.tgz`);
    expect(packed.files.map((f) => f.path).sort()).toEqual(
      ["README.md", "package.json", "qpq_web.d.ts", "qpq_web.js", "qpq_web_bg.wasm", "qpq_web_bg.wasm.d.ts"],
    );
    await writeFile(path.join(scratch, "package.json"), JSON.stringify({ name: "sdk-smoke", private: true, type: "module" }));
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", `./${packed.filename}`], scratch);
    const installed = path.join(scratch, "node_modules", "@quicproquo", "web");
    const manifest = JSON.parse(await readFile(path.join(installed, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "@quicproquo/web", version, type: "module" });
    const entry = manifest.exports["."];

    // The README's example, from the installed package, checked against its declarations.
    const example = firstJsBlock(await readFile(path.join(installed, "README.md"), "utf8"));
    expect(example).toContain(`from "@quicproquo/web"`);
    expect(example).toContain(EXAMPLE_URL);
    await writeFile(path.join(scratch, "example.js"), example.replace(EXAMPLE_URL, WEBSOCKET_URL));
    await writeFile(
      path.join(scratch, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          allowJs: true, checkJs: true, noEmit: true, strict: true, skipLibCheck: false,
          target: "es2022", module: "esnext", moduleResolution: "bundler", lib: ["es2022", "esnext.disposable", "dom"], types: [],
        },
        files: ["example.js"],
      }),
    );
    run(process.execPath, [path.join(ROOT, "playwright", "node_modules", "typescript", "bin", "tsc"), "-p", scratch], scratch);

    // Pages that import the package by name: an import map points it at the installed files.
    const importMap = JSON.stringify({ imports: { "@quicproquo/web": `./node_modules/@quicproquo/web/${entry.default.replace(/^\.\//, "")}` } });
    const page = (script) => `<!doctype html><meta charset="utf-8"><script type="importmap">${importMap}</script>${script}`;
    await writeFile(path.join(scratch, "alice.html"), page(`<script type="module" src="./example.js"></script>`));
    await writeFile(path.join(scratch, "bob.html"), page(""));
    server = await serve(scratch, PAGE_PORT);

    const problems = [];
    const person = async () => {
      const context = await browser.newContext();
      contexts.push(context);
      watchForPageProblems(context, problems);
      return context.newPage();
    };

    // Bob signs up with the installed package and keeps what arrives.
    const bob = await person();
    await bob.goto(`${PAGE_ORIGIN}/bob.html`);
    const bobUser = await bob.evaluate(async (url) => {
      const sdk = await import("@quicproquo/web");
      await sdk.default();
      const client = await sdk.QpqClient.register("bob", { transport: "websocket", websocketUrl: url });
      window.received = [];
      client.onEvent((ev) => {
        if (ev.type !== "message" || ev.change !== "added") return;
        const m = client.message(ev.conversation, ev.index);
        if (m && !m.outgoing && m.kind === "text") window.received.push({ conversation: ev.conversation, text: m.text });
      });
      client.start();
      window.client = client;
      return client.user();
    }, WEBSOCKET_URL);
    expect(bobUser).toMatch(/^bob@/);

    // Alice runs the README's example as it stands: signs up, starts the chat, sends.
    const alice = await person();
    const aliceLog = [];
    alice.on("console", (m) => aliceLog.push(m.text()));
    await alice.goto(`${PAGE_ORIGIN}/alice.html`);
    await expect.poll(() => bob.evaluate(() => window.received.map((r) => r.text))).toEqual(["hello from the SDK"]);

    // Bob answers; the example's event handler prints it on Alice's side.
    await bob.evaluate(() => window.client.sendText(window.received[0].conversation, "hi alice, from bob"));
    await expect.poll(() => aliceLog).toContain("hi alice, from bob");

    // The gateway admitted both sessions from the page's origin.
    const health = await stack.gateway.health();
    expect(health.nodes.reduce((n, node) => n + node.sessions, 0)).toBeGreaterThanOrEqual(2);
    expect(problems).toEqual([]);
  } finally {
    for (const c of contexts) await c.close();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
    await rm(scratch, { recursive: true, force: true });
  }
});
