// The fleet view's store (api/console/fleet-store.js) without a browser:
// whatever sequence of watch events arrives, after each frame's apply()
// the order is sorted under the chosen sort, the filtered list is exactly
// the matching rows in that order, and the incremental counts equal a
// count from scratch (which is what GET /fleet/summary computes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { root } from './support.mjs';

// The console's files are browser modules (.js without a package type), so
// the store is loaded as source.
const source = readFileSync(path.join(root, 'api/console/fleet-store.js'), 'utf8');
const { FleetStore, PHASES, SORTS, STATES, SYSTEMS, needsAttention } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

/** A deterministic pseudo-random sequence (mulberry32). */
function random(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rowOf(next, slug, clock) {
  const pick = (list) => list[Math.floor(next() * list.length)];
  const systems = {};
  for (const [key] of SYSTEMS) if (next() < 0.9) systems[key] = { state: pick(STATES), reason: 'R' };
  return {
    id: slug, slug, name: `Name ${pick(['Acme', 'Globex', 'Initech'])} ${slug}`, plan: 'team', paused: next() < 0.2,
    generation: 2, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: new Date(clock).toISOString(),
    status: { phase: pick(PHASES), observedGeneration: 2, systems },
  };
}

function recount(rows) {
  const counts = { tenants: 0, phases: Object.fromEntries(PHASES.map((p) => [p, 0])), paused: 0, attention: 0, systems: {} };
  for (const [key] of SYSTEMS) counts.systems[key] = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const row of rows) {
    counts.tenants += 1;
    counts.phases[row.status.phase] += 1;
    counts.paused += row.paused ? 1 : 0;
    counts.attention += needsAttention(row) ? 1 : 0;
    for (const [key] of SYSTEMS) if (row.status.systems[key]) counts.systems[key][row.status.systems[key].state] += 1;
  }
  return counts;
}

function check(store, truth, label) {
  assert.deepEqual(store.counts, recount(truth.values()), `${label}: counts`);
  assert.equal(store.order.length, truth.size, `${label}: every row once`);
  const compare = SORTS[store.sort].compare;
  for (let i = 1; i < store.order.length; i += 1) {
    assert.ok(compare(store.order[i - 1], store.order[i]) < 0, `${label}: sorted at ${i}`);
  }
  for (const entry of store.order) assert.equal(entry.row, truth.get(entry.slug), `${label}: ${entry.slug} current`);
  assert.deepEqual(store.shown.map((e) => e.slug), store.order.filter((e) => store.matches(e)).map((e) => e.slug), `${label}: filtered`);
}

test('after any sequence of watch events the store is sorted, filtered and counted as from scratch', () => {
  const next = random(7);
  const store = new FleetStore();
  const truth = new Map();
  let clock = Date.UTC(2026, 0, 1);
  store.receive('reset', {});
  for (let i = 0; i < 500; i += 1) {
    const row = rowOf(next, `t-${String(i).padStart(4, '0')}`, clock += 1000);
    truth.set(row.slug, row);
    store.receive('added', row);
  }
  store.receive('synced', {});
  store.apply();
  assert.equal(store.synced, true);
  check(store, truth, 'snapshot');
  const filters = [
    { text: '', phase: '', status: '' }, { text: 'acme', phase: '', status: '' },
    { text: '', phase: 'degraded', status: '' }, { text: 't-01', phase: '', status: 'attention' },
    { text: '', phase: '', status: 'paused' }, { text: '', phase: 'active', status: 'ocis:error' },
  ];
  const sorts = Object.keys(SORTS);
  for (let frame = 0; frame < 300; frame += 1) {
    // Small frames move rows one by one, a few large ones sort everything again.
    const events = frame % 50 === 49 ? 400 : 1 + Math.floor(next() * 12);
    for (let e = 0; e < events; e += 1) {
      const slug = `t-${String(Math.floor(next() * 600)).padStart(4, '0')}`;
      const roll = next();
      if (roll < 0.1) {
        const last = truth.get(slug) || rowOf(next, slug, clock);
        truth.delete(slug);
        store.receive('deleted', last);
      } else {
        const row = rowOf(next, slug, clock += 1000);
        store.receive(truth.has(slug) ? 'modified' : 'added', row);
        truth.set(slug, row);
      }
    }
    if (frame % 20 === 0) store.setFilter(filters[(frame / 20) % filters.length]);
    if (frame % 30 === 0) store.setSort(sorts[(frame / 30) % sorts.length]);
    store.apply();
    check(store, truth, `frame ${frame}`);
  }
});

test('a reset keeps the rows shown until its synced, then replaces them all', () => {
  const store = new FleetStore();
  const row = (slug, phase) => ({ slug, name: slug, plan: 'team', paused: false, generation: 1, updatedAt: 'x', status: { phase, observedGeneration: 1, systems: {} } });
  store.receive('reset', {});
  store.receive('added', row('a', 'active'));
  store.receive('added', row('b', 'active'));
  store.receive('synced', {});
  store.apply();
  assert.deepEqual(store.order.map((e) => e.slug), ['a', 'b']);
  store.receive('reset', {});
  store.receive('added', row('c', 'pending'));
  assert.deepEqual(store.apply().counts, false, 'nothing applied before synced');
  assert.deepEqual(store.order.map((e) => e.slug), ['a', 'b']);
  store.receive('synced', {});
  store.apply();
  assert.deepEqual(store.order.map((e) => e.slug), ['c']);
  assert.equal(store.counts.phases.pending, 1);
  assert.equal(store.counts.tenants, 1);
});

test('a change that keeps a row in place does not rebuild the filtered list', () => {
  const store = new FleetStore();
  const row = (slug, name) => ({ slug, name, plan: 'team', paused: false, generation: 1, updatedAt: 'x', status: { phase: 'active', observedGeneration: 1, systems: { authentik: { state: 'ok' } } } });
  store.receive('reset', {});
  for (const slug of ['a', 'b', 'c']) store.receive('added', row(slug, slug));
  store.receive('synced', {});
  store.apply();
  store.setFilter({ text: 'a', phase: '', status: '' });
  const shown = store.shown;
  store.receive('modified', row('a', 'a renamed'));
  const result = store.apply();
  assert.equal(result.reshown, false);
  assert.equal(store.shown, shown, 'the same list object');
  assert.equal(store.shown[0].row.name, 'a renamed');
  store.receive('modified', row('b', 'now with a'));
  assert.equal(store.apply().reshown, true, 'b now matches the search');
  assert.deepEqual(store.shown.map((e) => e.slug), ['a', 'b']);
});
