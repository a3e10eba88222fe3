// The fleet view at fleet size in a real headless Chromium: 2,000 tenants
// created through the API and converged, then the console signed in. The
// summary shows what GET /fleet/summary counts; the list holds only the
// rows on screen; search narrows it to the right tenants; a PATCH updates
// its row live without recreating any other; a summary count filters;
// the keyboard walks the rows; clicking a row opens the tenant page.
//
// Run: ./scripts/browser-test.sh (or `node --test tests/browser/fleet.spec.mjs`).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { call, createTenants, openPage, signIn, startStack, until } from './support.mjs';

const COUNT = 2000;
const slugOf = (i) => `fleet-${String(i).padStart(5, '0')}`;

test('the fleet view keeps 2,000 tenants summarised, virtualised, searchable and live', { timeout: 300_000 }, async (t) => {
  // Unlimited upstream rates: only the setup converges faster.
  const { api, token } = await startStack((fn) => t.after(fn), { env: { AUTHENTIK_QPS: '0', STALWART_QPS: '0', OCIS_QPS: '0' } });
  const tenants = Array.from({ length: COUNT }, (_, i) => ({ slug: slugOf(i), name: `Fleet Tenant ${i}`, plan: 'team' }));
  await createTenants(api, token, tenants);
  const summary = async () => (await call(api, token, 'GET', '/fleet/summary')).body;
  await until('every tenant to be active', async () => {
    const s = await summary();
    return s.tenants === COUNT + 1 && s.phases.active === s.tenants;
  }, 240_000);

  const { page, errors } = await openPage((fn) => t.after(fn));
  await signIn(page, api);
  const list = page.locator('#tenants[data-synced="true"]');
  await list.waitFor();
  assert.equal(await list.getAttribute('data-count'), String(COUNT + 1), 'every tenant is in the list');
  await page.evaluate(() => { window.__sameDocument = true; });

  // The summary shows what the API counts (drift corrections come from the API).
  const figures = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-stat]')].map((el) => {
    const digits = el.querySelector('.value').textContent.replace(/\D/g, '');
    return [el.dataset.stat, digits === '' ? null : Number(digits)];
  })));
  const expected = (s) => {
    const out = { tenants: s.tenants, attention: s.needsAttention, paused: s.paused, drift: s.driftCorrectionsToday, ...s.phases };
    for (const [system, states] of Object.entries(s.systems)) {
      out[`${system}:error`] = states.error;
      out[`${system}:pending`] = states.pending;
    }
    return out;
  };
  const sameSummary = async (what) => {
    let last;
    await until(what, async () => {
      last = [await figures(), expected(await summary())];
      return JSON.stringify(last[0]) === JSON.stringify(Object.fromEntries(Object.keys(last[0]).map((k) => [k, last[1][k]])))
        && Object.keys(last[0]).length === Object.keys(last[1]).length;
    }).catch((e) => { throw new Error(`${e.message}: shown ${JSON.stringify(last[0])}, API ${JSON.stringify(last[1])}`); });
  };
  await sameSummary('the summary to show the API\'s counts');
  assert.equal((await figures()).tenants, COUNT + 1);

  // Only the rows on screen (and a few more) exist, in order, whatever the scroll.
  const rows = page.locator('#tenants .fleet-body [role="row"]');
  const rendered = () => rows.evaluateAll((els) => els.map((el) => el.dataset.slug));
  let slugs = await rendered();
  assert.ok(slugs.length > 10 && slugs.length < 100, `${slugs.length} row elements for ${COUNT + 1} tenants`);
  assert.deepEqual(slugs.slice(0, 3), ['dezky', slugOf(0), slugOf(1)], 'sorted by slug when nothing needs attention');
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await page.locator(`#tenants [role="row"][data-slug="${slugOf(COUNT - 1)}"]`).waitFor();
  slugs = await rendered();
  assert.ok(slugs.length < 100, `${slugs.length} row elements at the bottom`);
  assert.deepEqual(slugs, [...slugs].sort(), 'document order is list order');
  await page.evaluate(() => window.scrollTo(0, 0));

  // Search narrows to the right tenants: slug or name, case-insensitive.
  const search = page.getByLabel('Search');
  const shownAre = async (what, wanted) => {
    await until(what, async () => JSON.stringify(await rendered()) === JSON.stringify(wanted)
      && (await list.getAttribute('data-shown')) === String(wanted.length));
  };
  await search.fill('fleet-0123');
  const tens = Array.from({ length: 10 }, (_, i) => slugOf(1230 + i));
  await shownAre('the search to narrow the list to ten tenants', tens);
  assert.equal(await page.locator('#count').textContent(), `10 of ${(COUNT + 1).toLocaleString('en-US')} tenants`);
  await search.fill('FLEET TENANT 1234');
  await shownAre('a name search to find one tenant', [slugOf(1234)]);

  // A PATCH updates its row live; the other rows are the same elements, untouched.
  await search.fill('fleet-0123');
  await shownAre('the ten tenants again', tens);
  await rows.evaluateAll((els) => els.forEach((el) => { el.__before = el.textContent; el.__same = true; }));
  const patched = await call(api, token, 'PATCH', `/tenants/${slugOf(1234)}`, { name: 'Renamed Live', paused: true });
  assert.equal(patched.status, 200);
  const row = page.locator(`#tenants [role="row"][data-slug="${slugOf(1234)}"]`);
  await row.locator('.name', { hasText: 'Renamed Live' }).waitFor();
  await row.locator('.phase .badge.paused').waitFor();
  const untouched = await rows.evaluateAll((els) => els.map((el) => [el.dataset.slug, el.__same === true, el.__before === el.textContent]));
  for (const [slug, same, unchanged] of untouched) {
    assert.ok(same, `${slug} is the same element`);
    assert.equal(unchanged, slug !== slugOf(1234), `only the patched row changed (${slug})`);
  }
  await sameSummary('the summary to count the paused tenant');
  assert.equal((await figures()).paused, 1);
  assert.ok(await page.evaluate(() => window.__sameDocument), 'no reload');

  // A summary count filters; pressing it again clears that filter.
  await search.fill('');
  const paused = page.locator('button[data-stat="paused"]');
  await paused.click();
  await shownAre('the paused count to filter the list', [slugOf(1234)]);
  assert.equal(await paused.getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByLabel('Show').inputValue(), 'paused');
  await paused.click();
  await until('the filter to clear', async () => (await list.getAttribute('data-shown')) === String(COUNT + 1));

  // The keyboard walks the rows, through rows not rendered yet.
  await page.locator('#tenants [role="row"][data-slug="dezky"] a').focus();
  await page.keyboard.press('ArrowDown');
  const focused = () => page.evaluate(() => document.activeElement.closest('[role="row"]')?.dataset.slug);
  assert.equal(await focused(), slugOf(0));
  await page.keyboard.press('End');
  assert.equal(await focused(), slugOf(COUNT - 1));
  assert.ok(await page.evaluate(() => {
    const box = document.activeElement.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
  }), 'the last row is on screen');
  await page.keyboard.press('Home');
  assert.equal(await focused(), 'dezky');

  // Clicking a row opens its tenant page, with its full status; back shows the list at once.
  await search.fill('fleet-01234');
  await shownAre('one tenant', [slugOf(1234)]);
  await row.locator('.name').click();
  await page.getByRole('heading', { name: 'Renamed Live' }).waitFor();
  await page.locator('#phase .badge').waitFor();
  await page.locator('tr[data-system="authentik"] .badge').waitFor();
  assert.equal(new URL(page.url()).hash, `#/tenants/${slugOf(1234)}`);
  await page.goBack();
  await list.waitFor();
  await row.waitFor();
  assert.ok(await page.evaluate(() => window.__sameDocument), 'no reload');
  assert.deepEqual(errors, [], 'no script errors');
});
