// A look inside the app's SharedWorker (www/engine-worker.js), which Playwright does not list:
// through CDP, the worker target of the same browser context as a page is attached to, and an
// expression evaluated in it.

import { expect } from "@playwright/test";

/**
 * Takes SharedWorker away from every page of `context`, as in a browser without it: the tabs
 * then elect a leading tab that runs the engine.
 * @param {import("@playwright/test").BrowserContext} context
 */
export function withoutSharedWorker(context) {
  return context.addInitScript(() => delete globalThis.SharedWorker);
}

/**
 * Evaluates `expression` in the engine's SharedWorker of `page`'s browser context and returns
 * its value; fails when there is no such worker.
 * @param {import("@playwright/test").Page} page
 * @param {string} expression
 */
export async function evaluateInEngineWorker(page, expression) {
  const cdp = await page.context().newCDPSession(page);
  try {
    let worker;
    await expect
      .poll(async () => !!(worker = await findEngineWorker(cdp)), "the engine's SharedWorker runs")
      .toBe(true);
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId: worker.targetId, flatten: false });
    const answer = new Promise((resolve) =>
      cdp.on("Target.receivedMessageFromTarget", (e) => {
        if (e.sessionId !== sessionId) return;
        const m = JSON.parse(e.message);
        if (m.id === 1) resolve(m);
      }),
    );
    const call = { id: 1, method: "Runtime.evaluate", params: { expression, returnByValue: true, awaitPromise: true } };
    await cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify(call) });
    const m = await answer;
    await cdp.send("Target.detachFromTarget", { sessionId });
    if (m.error) throw new Error(`CDP: ${m.error.message}`);
    if (m.result.exceptionDetails) throw new Error(`in the worker: ${m.result.exceptionDetails.text}`);
    return m.result.result.value;
  } finally {
    await cdp.detach();
  }
}

/** Whether the engine's SharedWorker of `page`'s context downloaded the engine (the .wasm). */
export function engineWorkerLoadedEngine(page) {
  return evaluateInEngineWorker(
    page,
    `performance.getEntriesByType("resource").some((e) => e.name.endsWith("/pkg/qpq_web_bg.wasm"))`,
  );
}

/** Whether an engine SharedWorker runs in `page`'s browser context. */
export async function engineWorkerRuns(page) {
  const cdp = await page.context().newCDPSession(page);
  try {
    return !!(await findEngineWorker(cdp));
  } finally {
    await cdp.detach();
  }
}

/** The target of the engine's SharedWorker in the browser context of `cdp`'s page, if any. */
async function findEngineWorker(cdp) {
  const { targetInfo: self } = await cdp.send("Target.getTargetInfo");
  const { targetInfos } = await cdp.send("Target.getTargets");
  return targetInfos.find(
    (t) =>
      t.type === "shared_worker" &&
      t.browserContextId === self.browserContextId &&
      new URL(t.url).pathname === "/engine-worker.js",
  );
}
