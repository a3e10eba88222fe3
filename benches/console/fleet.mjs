// `make bench-console`: the console's fleet view at fleet size, in real
// headless Chromium (Debian's, through playwright-core) against the release
// binary (`provisioner simulate` + `provisioner serve`, embedded mongod in a
// temporary directory). It creates TENANTS tenants through the API (16
// clients; the upstream rate limits are lifted so the setup converges
// sooner, the resync interval stays the default 5 m), waits until all are
// active (GET /fleet/summary), then measures and prints, each next to the
// issue's goal (nothing is asserted):
//
// - first complete fleet view: from the end of the sign-in (the token is
//   in hand) until the frame that shows the synced list is painted, over
//   three fresh sign-ins;
// - one search keystroke: the input event until the frame with the
//   filtered rows is painted, for each key of a typed slug;
// - opening one tenant: the click on a row until its page shows the phase
//   and every system's state;
// - main-thread busy: the renderer's TaskDuration (Chrome DevTools
//   Protocol Performance.getMetrics) over wall time, with the fleet idle,
//   and while the fleet resyncs at the default interval (the window starts
//   once the first resyncs run, about 5 minutes after the creates);
// - JS heap used (after a garbage collection) and DOM nodes.
//
// Second lines: main-thread busy while PATCHES tenants are renamed (real
// changes: each a row update, then its reconcile's status), and while the
// fleet resyncs every SHORT_RESYNC (serve restarted on the same data).
//
// Settings (environment): TENANTS (10000), PATCHES (1000), WINDOW_S (30),
// SHORT_RESYNC (30s; empty skips that line), PROVISIONER_BIN (default
// target/release/provisioner, which the make target builds).
import os from 'node:os';
import path from 'node:path';

import { call, createTenants, launch, root, signIn, startStack } from '../../tests/browser/support.mjs';

const TENANTS = Number(process.env.TENANTS || 10000);
const PATCHES = Math.min(TENANTS, Number(process.env.PATCHES || 1000));
const WINDOW = Number(process.env.WINDOW_S || 30) * 1000;
const SHORT_RESYNC = process.env.SHORT_RESYNC ?? '30s';
const bin = process.env.PROVISIONER_BIN || path.join(root, 'target/release/provisioner');
// The default RESYNC_INTERVAL (README) and its jitter: the first resyncs come this long after a tenant's pass.
const FIRST_RESYNC = 0.9 * 5 * 60_000;
const UNLIMITED = { AUTHENTIK_QPS: '0', STALWART_QPS: '0', OCIS_QPS: '0' };
const VIEWPORT = { width: 1280, height: 900 };

const slugOf = (i) => `bench-${String(i).padStart(5, '0')}`;
const n = (x) => x.toLocaleString('en-US');
const ms = (x) => `${n(Math.round(x))} ms`;
const pct = (x) => `${(100 * x).toFixed(1)} %`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (t) => new Promise((resolve) => setTimeout(resolve, t));
/** `30s`, `2m` or `500ms` in ms. */
const duration = (text) => {
  const [, value, unit] = text.match(/^(\d+(?:\.\d+)?)(ms|s|m)$/) || [null, '30', 's'];
  return Number(value) * { ms: 1, s: 1000, m: 60_000 }[unit];
};
const line = (what, value, goal = '') => console.log(`  ${what.padEnd(58)} ${value.padEnd(44)} ${goal}`);

async function waitFor(what, check, limit, every = 1000) {
  const deadline = Date.now() + limit;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

/** Reconcile passes so far (the Authentik system's, one per tenant pass). */
async function passes(api) {
  const text = await (await fetch(`${api}/metrics`)).text();
  let sum = 0;
  for (const match of text.matchAll(/^reconciles_total\{([^}]*)\} (\d+(?:\.\d+)?)/gm)) {
    if (match[1].includes('system="authentik"')) sum += Number(match[2]);
  }
  return sum;
}

/** The renderer's metrics through the DevTools protocol. */
async function devtools(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  return {
    metrics,
    /** Main-thread busy fraction while `work()` runs: `{busy, seconds, task}`. */
    async busy(work) {
      const before = await metrics();
      const result = await work();
      const after = await metrics();
      const seconds = after.Timestamp - before.Timestamp;
      const task = after.TaskDuration - before.TaskDuration;
      return { busy: task / seconds, seconds, task, result };
    },
    async memory() {
      await cdp.send('HeapProfiler.collectGarbage');
      const m = await metrics();
      return { heap: m.JSHeapUsedSize, nodes: m.Nodes };
    },
  };
}

/** A new tab signed in with the fleet view complete; `{page, firstView}` (ms from sign-in to the painted list). */
async function signedInPage(browser, api) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.setDefaultTimeout(120_000);
  page.on('pageerror', (e) => console.error(`  page error: ${e}`));
  // Records when the first frame with the complete list has been painted.
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (!document.querySelector('#tenants[data-synced="true"]')) return;
      observer.disconnect();
      setTimeout(() => { window.__fleetPainted = performance.now(); });
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-synced'] });
  });
  await signIn(page, api);
  await page.waitForFunction(() => window.__fleetPainted !== undefined, null, { timeout: 120_000 });
  const firstView = await page.evaluate(() => window.__fleetPainted - performance.getEntriesByName('dezky:signed-in')[0].startTime);
  return { page, firstView };
}

/** Types `text` into the search box one key at a time; the ms from each input event to the painted frame. */
async function keystrokes(page, text) {
  const search = page.locator('#search');
  await search.fill('');
  await page.waitForFunction(() => document.getElementById('tenants').dataset.shown === document.getElementById('tenants').dataset.count);
  await search.focus();
  const times = [];
  for (const key of text) {
    await page.evaluate(() => {
      window.__key = new Promise((resolve) => {
        document.getElementById('search').addEventListener('input', (event) => {
          // Registered after the view's own listener, so this frame callback runs after its redraw.
          requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - event.timeStamp)));
        }, { once: true });
      });
    });
    await page.keyboard.press(key);
    times.push(await page.evaluate(() => window.__key));
  }
  const shown = await page.locator('#tenants').getAttribute('data-shown');
  return { times, shown: Number(shown) };
}

/** Clicks the row of `slug` (on screen) until its tenant page shows the phase and all systems; ms. */
async function openTenant(page, slug) {
  await page.evaluate(() => {
    window.__open = new Promise((resolve) => {
      let start = 0;
      document.addEventListener('click', (event) => { start = event.timeStamp; }, { capture: true, once: true });
      new MutationObserver((_, observer) => {
        if (!document.querySelector('#phase .badge') || document.querySelectorAll('#main tr[data-system] .badge').length < 3) return;
        observer.disconnect();
        setTimeout(() => resolve(performance.now() - start));
      }).observe(document.getElementById('main'), { subtree: true, childList: true });
    });
  });
  await page.locator(`#tenants [role="row"][data-slug="${slug}"] a`).click();
  const time = await page.evaluate(() => window.__open);
  await page.goBack();
  await page.locator('#tenants[data-synced="true"]').waitFor();
  return time;
}

/**
 * A fleet watch of our own (what the page's watch receives too): counts
 * the `modified` events, and `renamed(slugs, name)` resolves once each of
 * `slugs` was seen renamed to `name(slug)` and reconciled
 * (observedGeneration = generation).
 */
async function fleetWatch(api, token) {
  const controller = new AbortController();
  const response = await fetch(`${api}/tenants?watch=true&view=fleet`, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
  let modified = 0;
  let waiting = null; // {slugs: Set, name, resolve}
  let synced;
  const ready = new Promise((resolve) => { synced = resolve; });
  (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    let kind = '';
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let start = 0;
        let end;
        while ((end = buffer.indexOf('\n', start)) >= 0) {
          const text = buffer.slice(start, end);
          start = end + 1;
          if (text.startsWith('event: ')) kind = text.slice(7);
          if (!text.startsWith('data: ')) continue;
          if (kind === 'synced') synced();
          if (kind !== 'modified') continue;
          modified += 1;
          if (!waiting) continue;
          const row = JSON.parse(text.slice(6));
          if (waiting.slugs.has(row.slug) && row.name === waiting.name(row.slug) && row.status.observedGeneration === row.generation) {
            waiting.slugs.delete(row.slug);
            if (waiting.slugs.size === 0) waiting.resolve();
          }
        }
        buffer = buffer.slice(start);
      }
    } catch {
      // stopped
    }
  })();
  await ready;
  return {
    modified: () => modified,
    renamed: (slugs, name) => new Promise((resolve) => { waiting = { slugs: new Set(slugs), name, resolve }; }),
    stop: () => controller.abort(),
  };
}

async function main() {
  const cleanups = [];
  const cleanup = async () => { for (const fn of cleanups.reverse()) await fn(); cleanups.length = 0; };
  process.once('SIGINT', () => { cleanup().finally(() => process.exit(130)); });
  try {
    const { api, token, restartServe } = await startStack((fn) => cleanups.push(fn), { bin, env: UNLIMITED });
    const browser = await launch();
    cleanups.push(() => browser.close());
    console.log(`make bench-console: ${n(TENANTS)} tenants, ${os.cpus().length} cores, ${bin}, Chromium ${browser.version()} headless`);

    const created = Date.now();
    await createTenants(api, token, Array.from({ length: TENANTS }, (_, i) => ({ slug: slugOf(i), name: `Bench Tenant ${i}`, plan: 'team' })));
    const posted = Date.now();
    await waitFor('every tenant to be active', async () => {
      const s = (await call(api, token, 'GET', '/fleet/summary')).body;
      return s.tenants === TENANTS + 1 && s.phases.active === s.tenants;
    }, 30 * 60_000);
    console.log(`  setup: ${n(TENANTS)} POST /tenants in ${((posted - created) / 1000).toFixed(1)} s (16 clients), all active ${((Date.now() - created) / 1000).toFixed(1)} s after the first`);
    console.log('\n  default settings (RESYNC_INTERVAL 5m)');

    // First complete fleet view, three fresh sign-ins.
    const views = [];
    let page = null;
    for (let i = 0; i < 3; i += 1) {
      if (page) await page.context().close();
      const run = await signedInPage(browser, api);
      views.push(run.firstView);
      page = run.page;
    }
    line('first complete fleet view after sign-in', `${ms(median(views))} (median of ${views.map((v) => Math.round(v)).join(', ')})`, 'goal ≤ 1,500 ms');
    const tools = await devtools(page);

    // Keystrokes: a slug typed key by key.
    const typed = slugOf(Math.floor(TENANTS * 0.777));
    const keys = await keystrokes(page, typed);
    line('one search keystroke', `${ms(median(keys.times))} (median of ${keys.times.length}, first ${ms(keys.times[0])}, max ${ms(Math.max(...keys.times))})`, 'goal ≤ 100 ms');
    console.log(`  ${''.padEnd(58)} (typing "${typed}" key by key; ${n(keys.shown)} row left)`);
    await page.locator('#search').fill('');
    await page.waitForFunction(() => document.getElementById('tenants').dataset.shown === document.getElementById('tenants').dataset.count);

    // Opening tenants from the rows on screen.
    const onScreen = await page.locator('#tenants .fleet-body [role="row"]').evaluateAll((els) => els.map((el) => el.dataset.slug));
    const opens = [];
    for (const slug of onScreen.slice(2, 7)) opens.push(await openTenant(page, slug));
    line('opening one tenant', `${ms(median(opens))} (median of ${opens.length}, max ${ms(Math.max(...opens))})`, 'goal ≤ 300 ms');

    // Idle, then while the fleet resyncs.
    const idle = await tools.busy(() => sleep(10_000));
    line('main thread busy, fleet idle', `${pct(idle.busy)} over ${idle.seconds.toFixed(0)} s`);
    const resyncFrom = created + FIRST_RESYNC;
    if (Date.now() < resyncFrom) {
      console.log(`  (waiting ${Math.round((resyncFrom - Date.now()) / 1000)} s for the first resyncs, ${FIRST_RESYNC / 60_000} min after the creates)`);
      await sleep(resyncFrom - Date.now());
    }
    let before = await passes(api);
    await waitFor('resyncs to start', async () => (await passes(api)) > before + 20, 3 * 60_000);
    const events = await fleetWatch(api, token);
    cleanups.push(() => events.stop());
    before = await passes(api);
    let modified = events.modified();
    const resync = await tools.busy(() => sleep(WINDOW));
    const during = (await passes(api)) - before;
    modified = events.modified() - modified;
    line('main thread busy while the fleet resyncs', `${pct(resync.busy)} over ${resync.seconds.toFixed(0)} s`, 'goal ≤ 10 %');
    console.log(`  ${''.padEnd(58)} (${n(during)} resync passes, ${n(modified)} fleet events: a tenant's first resync turns its reasons from Created to InSync)`);
    const memory = await tools.memory();
    line('browser memory: JS heap used after GC, DOM nodes', `${(memory.heap / 1048576).toFixed(1)} MB, ${n(memory.nodes)} nodes`);

    // Second line: PATCHES real changes, coalesced per frame.
    console.log('\n  second lines');
    const renamed = (slug) => `Renamed ${slug}`;
    const patched = Array.from({ length: PATCHES }, (_, i) => slugOf(Math.floor((i * TENANTS) / PATCHES)));
    const allRenamed = events.renamed(patched, renamed);
    let burstEvents = events.modified();
    const burst = await tools.busy(async () => {
      const start = Date.now();
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < patched.length) {
          const slug = patched[next];
          next += 1;
          const reply = await call(api, token, 'PATCH', `/tenants/${slug}`, { name: renamed(slug) });
          if (reply.status !== 200) throw new Error(`PATCH ${slug}: ${reply.status}`);
        }
      }));
      const patchedIn = Date.now() - start;
      await Promise.race([allRenamed, sleep(120_000)]);
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve))));
      return patchedIn;
    });
    burstEvents = events.modified() - burstEvents;
    await page.locator('#search').fill('renamed');
    await page.waitForFunction(() => document.getElementById('tenants').dataset.shown !== document.getElementById('tenants').dataset.count);
    const shownRenamed = Number(await page.locator('#tenants').getAttribute('data-shown'));
    await page.locator('#search').fill('');
    line(`main thread busy while ${n(PATCHES)} tenants are PATCHed`, `${pct(burst.busy)} over ${burst.seconds.toFixed(1)} s (${ms(burst.task * 1000)} of work)`);
    console.log(`  ${''.padEnd(58)} (PATCHes sent in ${ms(burst.result)}, ${n(burstEvents)} fleet events until all reconciled, the view shows ${n(shownRenamed)} renamed)`);

    if (SHORT_RESYNC) {
      events.stop();
      await page.context().close();
      await restartServe({ ...UNLIMITED, RESYNC_INTERVAL: SHORT_RESYNC });
      ({ page } = await signedInPage(browser, api));
      const shortTools = await devtools(page);
      // Past the restarted controller's first passes (the last tenants' first resync
      // among them) and one whole interval, so the window sees only repeated resyncs.
      await sleep(1.1 * duration(SHORT_RESYNC) + 10_000);
      const shortEvents = await fleetWatch(api, token);
      cleanups.push(() => shortEvents.stop());
      before = await passes(api);
      const short = await shortTools.busy(() => sleep(WINDOW));
      const shortPasses = (await passes(api)) - before;
      line(`main thread busy while the fleet resyncs every ${SHORT_RESYNC}`, `${pct(short.busy)} over ${short.seconds.toFixed(0)} s`, 'goal ≤ 10 %');
      console.log(`  ${''.padEnd(58)} (${n(shortPasses)} resync passes, ${n(shortEvents.modified())} fleet events)`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((error) => { console.error(error); process.exit(1); });
