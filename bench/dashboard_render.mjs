// Times the fleet overview in Chromium against a running OBT server; called by
// bench/dashboard_bench.py, which starts the server. Prints one JSON line.
//
//   node bench/dashboard_render.mjs --url http://127.0.0.1:PORT --clients N [--runs 5]
//        [--live-seconds 60]
//
// "Rendered" means, measured in the page from navigation start (performance.now()):
//   the "Clients" count card reads N AND the clients table holds its first page
//   (min(N, 100) rows with data-client-id) AND the first row has a non-empty box.
// `dom_ms` is when a MutationObserver first sees that; `painted_ms` is after the next frame
// (requestAnimationFrame, then a task), i.e. once it has been painted.
// Every run uses a fresh browser context (empty cache), as a first visit does.
//
// With --live-seconds S, one more visit then stays on the fleet page for S seconds of live
// updates (the caller keeps heartbeats flowing) and reports: main-thread long tasks (Long
// Tasks API: count over 100 ms, the longest), the bytes and messages the live feed
// (EventSource) brought in per second (Chrome DevTools Protocol network events), and the
// page's JS heap (CDP Runtime.getHeapUsage, at the end, before and after a collection).
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const require = createRequire(
  new URL("../frontend/package.json", import.meta.url),
);
const { chromium } = require("@playwright/test");

const PAGE_SIZE = 100;
const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    clients: { type: "string" },
    runs: { type: "string" },
    "live-seconds": { type: "string" },
  },
});
const liveSeconds = Number(args["live-seconds"] ?? 0);
const url = args.url;
const clients = Number(args.clients);
const runs = Number(args.runs ?? 5);
if (!url || !Number.isInteger(clients)) {
  console.error(
    "usage: node bench/dashboard_render.mjs --url URL --clients N [--runs 5]",
  );
  process.exit(2);
}

function watch({ expected, firstPage }) {
  const mark = {};
  window.__obtRender = mark;
  const check = () => {
    if (mark.dom !== undefined) return;
    const total = document.querySelector('[data-testid="count-total"]');
    if (!total || total.textContent.trim() !== String(expected)) return;
    const rows = document.querySelectorAll("tbody tr[data-client-id]");
    if (rows.length !== firstPage) return;
    const box = rows[0].getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return;
    mark.dom = performance.now();
    mark.first_row_in_viewport = box.top < window.innerHeight;
    observer.disconnect();
    requestAnimationFrame(() =>
      setTimeout(() => (mark.painted = performance.now()), 0),
    );
  };
  const observer = new MutationObserver(check);
  observer.observe(document, {
    childList: true,
    subtree: true,
    characterData: true,
  });
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const results = [];
let live = null;
try {
  for (let run = 0; run < runs; run++) {
    const context = await browser.newContext({
      viewport: { width: 1440, height: 900 },
    });
    const page = await context.newPage();
    const scripts = [];
    page.on("response", (response) => {
      const type = response.request().resourceType();
      if (type === "script" || response.url().endsWith(".js"))
        scripts.push(response);
    });
    await page.addInitScript(watch, {
      expected: clients,
      firstPage: Math.min(clients, PAGE_SIZE),
    });
    await page.goto(`${url}/`, { waitUntil: "commit" });
    await page.waitForFunction(
      () => window.__obtRender?.painted !== undefined,
      null,
      {
        timeout: 60_000,
      },
    );
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const list = performance
        .getEntriesByType("resource")
        .find((e) => new URL(e.name).pathname === "/api/v1/clients");
      const fcp = performance.getEntriesByName("first-contentful-paint")[0];
      const js = performance
        .getEntriesByType("resource")
        .filter((e) => new URL(e.name).pathname.endsWith(".js"));
      return {
        ...window.__obtRender,
        html_ms: nav.responseEnd,
        dom_content_loaded_ms: nav.domContentLoadedEventEnd,
        first_contentful_paint_ms: fcp ? fcp.startTime : null,
        js_done_ms: Math.max(...js.map((e) => e.responseEnd)),
        clients_request_start_ms: list ? list.requestStart : null,
        clients_response_end_ms: list ? list.responseEnd : null,
        clients_body_bytes: list ? list.encodedBodySize : null,
      };
    });
    // Bodies after the render, so reading them cannot slow it down.
    let jsRaw = 0;
    let jsGzip = 0;
    let jsWire = 0;
    const files = [];
    for (const response of scripts) {
      const body = await response.body();
      const sizes = await response.request().sizes();
      jsRaw += body.length;
      jsGzip += gzipSync(body, { level: 9 }).length;
      jsWire += sizes.responseBodySize;
      files.push(new URL(response.url()).pathname);
    }
    results.push({
      ...timing,
      js_files: files.length,
      js_raw_bytes: jsRaw,
      js_gzip_bytes: jsGzip,
      js_wire_bytes: jsWire,
      js_content_encoding: scripts[0]
        ? ((await scripts[0].allHeaders())["content-encoding"] ?? "identity")
        : null,
    });
    await context.close();
  }
  if (liveSeconds > 0) live = await watchLive();
} finally {
  await browser.close();
}
console.log(JSON.stringify({ url, clients, runs: results, live }));

function observeLongTasks() {
  window.__obtLongTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      window.__obtLongTasks.push(entry.duration);
  }).observe({ type: "longtask", buffered: true });
}

async function watchLive() {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  const liveRequests = new Set();
  let counting = false;
  let wireBytes = 0;
  let messages = 0;
  let messageBytes = 0;
  const liveUrls = [];
  cdp.on("Network.requestWillBeSent", (event) => {
    if (new URL(event.request.url).pathname === "/api/v1/live") {
      liveRequests.add(event.requestId);
      liveUrls.push(event.request.url);
    }
  });
  cdp.on("Network.dataReceived", (event) => {
    if (counting && liveRequests.has(event.requestId))
      wireBytes += event.encodedDataLength || event.dataLength;
  });
  cdp.on("Network.eventSourceMessageReceived", (event) => {
    if (!counting || !liveRequests.has(event.requestId)) return;
    messages += 1;
    messageBytes +=
      Buffer.byteLength(event.data) +
      event.eventName.length +
      String(event.eventId).length;
  });
  await page.addInitScript(watch, {
    expected: clients,
    firstPage: Math.min(clients, PAGE_SIZE),
  });
  await page.goto(`${url}/`, { waitUntil: "commit" });
  await page.waitForFunction(
    () => window.__obtRender?.painted !== undefined,
    null,
    { timeout: 60_000 },
  );
  // The page settles (its live stream opens and narrows to the rows in view), then we count.
  await page.waitForTimeout(3000);
  await page.evaluate(observeLongTasks);
  counting = true;
  const started = Date.now();
  await page.waitForTimeout(liveSeconds * 1000);
  counting = false;
  const seconds = (Date.now() - started) / 1000;
  const longTasks = await page.evaluate(() => window.__obtLongTasks);
  const before = await cdp.send("Runtime.getHeapUsage");
  await cdp.send("HeapProfiler.collectGarbage");
  const after = await cdp.send("Runtime.getHeapUsage");
  const rows = await page.evaluate(
    () => document.querySelectorAll("tbody tr[data-client-id]").length,
  );
  await context.close();
  return {
    seconds,
    long_tasks_over_50ms: longTasks.length,
    long_tasks_over_100ms: longTasks.filter((d) => d > 100).length,
    longest_task_ms: longTasks.length ? Math.max(...longTasks) : 0,
    live_wire_bytes_per_s: wireBytes / seconds,
    live_message_bytes_per_s: messageBytes / seconds,
    live_messages_per_s: messages / seconds,
    live_urls: liveUrls.map((u) => u.slice(0, 200)),
    heap_used_mb: before.usedSize / 2 ** 20,
    heap_used_after_gc_mb: after.usedSize / 2 ** 20,
    rows,
  };
}
