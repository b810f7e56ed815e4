// The ports a test stack listens on. Playwright runs the suite in several worker processes
// (playwright.config.js); each starts its own nodes, gateway and TURN server, so each worker
// moves every port up by WORKER_PORT_STEP times its index. Worker 0 uses 17443–17444 (nodes),
// 18080 (gateway), 18110 (the widget's host page), 18443 (HTTPS and HTTP/3), 18478 (TURN) and
// 18500–18599 (TURN relays); worker 1 the same 200 higher. A third worker would collide
// (its gateway's HTTPS port would fall in worker 0's relay range): the config runs two.

/** How far apart two workers' ports are. */
export const WORKER_PORT_STEP = 200;

/**
 * The port `base` for this worker.
 * @param {number | string} base the port of worker 0
 */
export function workerPort(base) {
  const index = Number(process.env.TEST_PARALLEL_INDEX ?? 0);
  return Number(base) + WORKER_PORT_STEP * index;
}
