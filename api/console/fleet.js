// The fleet view (#/tenants): a summary of every visible tenant at the top
// (by phase, systems in error or pending, paused, needing attention, drift
// corrections today; a count filters the list) and a virtualised list
// below: rows of a fixed height, only those on screen (plus a few) in the
// DOM, inside a body as tall as all of them. The rows come from the fleet
// watch (GET /tenants?watch=true&view=fleet), which runs from sign-in to
// sign-out. Its events go into the store as they arrive; what they change
// on screen is drawn once per animation frame, however many arrived, and
// only the visible rows that changed are redrawn.

import { announce, badge, count, h, show } from './dom.js';
import { FleetStore, PHASES, SORTS, SYSTEMS } from './fleet-store.js';
import { api } from './session.js';
import { watch } from './watch.js';

// Rows rendered above and below the screen, so a short scroll shows no gap.
const OVERSCAN = 8;
// How often the drift corrections of today are asked for again.
const SUMMARY_EVERY = 60000;
// Phase changes are announced at most this often.
const ANNOUNCE_EVERY = 1000;

let store = new FleetStore();
let stopWatch = null;
let live = false;
let applying = false; // applyEvents() is queued
let frame = 0; // the requested animation frame, 0 when none
let view = null; // the mounted page's elements and state, null on other pages
let drift = null; // the last GET /fleet/summary
let heard = []; // [slug, phase] changes not announced yet
let announcing = 0; // the timer that announces them
// The filters and sort, kept while the operator visits tenant pages.
const prefs = { text: '', phase: '', status: '', sort: 'attention' };

/** Starts the fleet watch (at sign-in). */
export function startFleet() {
  stopFleet();
  store = new FleetStore();
  store.setSort(prefs.sort);
  store.setFilter(prefs);
  stopWatch = watch('/tenants?watch=true&view=fleet', {
    onEvent: (kind, data) => { if (store.receive(kind, data)) received(); },
    onLive: (value) => {
      live = value;
      const el = document.getElementById('live');
      if (el) el.textContent = value ? 'Live' : 'Reconnecting…';
    },
  });
}

/** Stops the watch and forgets the rows (at sign-out). */
export function stopFleet() {
  if (stopWatch) stopWatch();
  stopWatch = null;
  store = new FleetStore();
  drift = null;
  live = false;
  clearTimeout(announcing);
  announcing = 0;
  heard = [];
}

function received() {
  if (!applying) {
    applying = true;
    queueMicrotask(applyEvents);
  }
}

/**
 * After each piece of the stream: folds its events into the store, and
 * asks for a frame only if the page shows something that changed (a
 * count, the list's order or members, a row on screen). A change to rows
 * off screen (most of a resync's) costs no frame at all.
 */
function applyEvents() {
  applying = false;
  const result = store.apply();
  if (result.phases.length) announcePhases(result.phases);
  if (!view) return;
  if (result.counts) view.summaryDirty = true;
  if (result.reshown) view.reshown = true;
  if (result.counts || result.reshown || result.changed.some((slug) => view.rows.has(slug))) schedule();
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

/** At most once per frame: redraws what changed since the last. */
function render() {
  if (frame) cancelAnimationFrame(frame);
  frame = 0;
  if (!view) return;
  if (view.filterChanged) {
    view.filterChanged = false;
    store.setFilter(prefs);
    if (store.sort !== prefs.sort) store.setSort(prefs.sort);
    view.reshown = true;
  }
  if (view.reshown) {
    view.reshown = false;
    view.summaryDirty = true; // the "n of m tenants" line
    if (view.scrollToTop) scrollToList();
    view.scrollToTop = false;
  }
  // The list reads the layout before anything is written, so no frame lays out twice.
  renderWindow();
  if (view.summaryDirty) {
    view.summaryDirty = false;
    renderSummary();
  }
  if (store.synced && view.list.dataset.synced !== 'true') {
    setAttribute(view.list, 'data-synced', 'true');
    performance.mark('dezky:fleet-complete');
  }
}

/**
 * Tells screen readers about phase changes: one tenant by name, a burst
 * (collected for ANNOUNCE_EVERY) as a count, so a resync of many tenants
 * is one sentence, not one per frame.
 */
function announcePhases(changes) {
  heard.push(...changes);
  if (announcing) return;
  announcing = setTimeout(() => {
    const last = new Map(heard); // slug -> its latest phase
    announcing = 0;
    heard = [];
    if (last.size === 1) {
      const [[slug, phase]] = last;
      announce(`${slug} is now ${phase}`);
    } else {
      announce(`${count(last.size)} tenants changed phase`);
    }
  }, ANNOUNCE_EVERY);
}

/** Shows the fleet view; returns what unmounts it. */
export function renderFleet() {
  const search = h('input', { id: 'search', type: 'search', placeholder: 'slug or name', autocomplete: 'off', value: prefs.text });
  const phase = h('select', { id: 'phase-filter' },
    h('option', { value: '' }, 'All phases'), PHASES.map((p) => h('option', { value: p, selected: p === prefs.phase }, p)));
  const status = h('select', { id: 'status-filter' },
    h('option', { value: '' }, 'Everything'),
    h('option', { value: 'attention', selected: prefs.status === 'attention' }, 'Needs attention'),
    h('option', { value: 'paused', selected: prefs.status === 'paused' }, 'Paused'),
    SYSTEMS.flatMap(([key, label]) => ['error', 'pending'].map((s) => h('option', { value: `${key}:${s}`, selected: prefs.status === `${key}:${s}` }, `${label} ${s}`))));
  const sort = h('select', { id: 'sort' },
    Object.entries(SORTS).map(([key, s]) => h('option', { value: key, selected: key === prefs.sort }, s.label)));
  const changed = (top) => () => {
    Object.assign(prefs, { text: search.value, phase: phase.value, status: status.value, sort: sort.value });
    view.filterChanged = true;
    view.scrollToTop = top;
    schedule();
  };
  search.addEventListener('input', changed(true));
  phase.addEventListener('change', changed(true));
  status.addEventListener('change', changed(true));
  sort.addEventListener('change', changed(true));

  const body = h('div', { class: 'fleet-body', role: 'rowgroup' });
  const list = h('div', { id: 'tenants', class: 'fleet', role: 'table', 'aria-labelledby': 'list-title', 'aria-describedby': 'count' },
    h('div', { class: 'fleet-head', role: 'rowgroup' },
      h('div', { class: 'fleet-row', role: 'row', 'aria-rowindex': 1 },
        ['Tenant', 'Name', 'Plan', 'Phase', ...SYSTEMS.map(([, label]) => label), 'Generation']
          .map((c) => h('div', { role: 'columnheader' }, c)))),
    body);
  body.addEventListener('keydown', onListKey);
  body.addEventListener('click', (event) => {
    const row = event.target.closest('.fleet-row');
    if (row && !event.target.closest('a')) location.hash = row.querySelector('a').getAttribute('href');
  });

  const summary = h('section', { class: 'card summary', 'aria-labelledby': 'summary-title' });
  view = {
    list, body, summary, search, phase, status, sort,
    count: h('p', { class: 'muted', id: 'count', 'aria-live': 'polite' }),
    empty: h('p', { class: 'muted', hidden: true }, 'No tenant matches these filters.'),
    rows: new Map(), // slug -> rendered row element
    rowHeight: 0,
    filterChanged: false,
    reshown: true,
    summaryDirty: true,
    scrollToTop: false,
  };
  buildSummary(summary);
  show(
    h('div', { class: 'actions header-row' },
      h('h1', {}, 'Tenants'),
      h('a', { class: 'button', href: '#/new' }, 'New tenant')),
    h('p', { class: 'muted', id: 'live', 'aria-live': 'polite' }, live ? 'Live' : 'Connecting…'),
    summary,
    h('h2', { id: 'list-title', class: 'sr-only' }, 'Tenant list'),
    h('div', { class: 'filters fleet-filters' },
      h('div', {}, h('label', { for: 'search' }, 'Search'), search),
      h('div', {}, h('label', { for: 'phase-filter' }, 'Phase'), phase),
      h('div', {}, h('label', { for: 'status-filter' }, 'Show'), status),
      h('div', {}, h('label', { for: 'sort' }, 'Sort'), sort)),
    view.count, list, view.empty);

  const onScroll = () => schedule();
  const onResize = () => { view.rowHeight = 0; view.rows.forEach((el) => { el.index = -1; }); schedule(); };
  window.addEventListener('scroll', onScroll, { passive: true });
  window.addEventListener('resize', onResize);
  const refresh = setInterval(loadDrift, SUMMARY_EVERY);
  loadDrift();
  view.filterChanged = true;
  render();
  return () => {
    window.removeEventListener('scroll', onScroll);
    window.removeEventListener('resize', onResize);
    clearInterval(refresh);
    view = null;
  };
}

// ---- the summary --------------------------------------------------------------

/** Each count is a button that sets one filter (and unsets it when pressed again). */
function buildSummary(section) {
  const figures = new Map(); // key -> {value, el, filter (of a toggle)}
  // The total is a button too: it clears every filter (so it is never "pressed").
  const stat = (key, label, filter) => {
    const value = h('span', { class: 'value' }, '–');
    const content = [value, h('span', { class: 'label' }, label)];
    const pressable = filter && key !== 'tenants';
    const el = filter
      ? h('button', { type: 'button', class: `stat ${key.replace(':', '-')}`, 'aria-pressed': pressable ? 'false' : null, 'data-stat': key, onclick: () => toggle(filter) }, content)
      : h('div', { class: `stat ${key}`, 'data-stat': key }, content);
    figures.set(key, { value, el, filter: pressable ? filter : null });
    return el;
  };
  section.append(
    h('h2', { id: 'summary-title', class: 'sr-only' }, 'Summary'),
    h('div', { class: 'stats' },
      stat('tenants', 'tenants', { phase: '', status: '', text: '' }),
      stat('attention', 'need attention', { status: 'attention' }),
      PHASES.map((p) => stat(p, p, { phase: p })),
      stat('paused', 'paused', { status: 'paused' }),
      stat('drift', 'drift corrections today')),
    h('div', { class: 'stats systems-summary' },
      SYSTEMS.map(([key, label]) => h('div', { class: 'system-stat' },
        h('span', { class: 'system-name' }, label),
        stat(`${key}:error`, 'error', { status: `${key}:error` }),
        stat(`${key}:pending`, 'pending', { status: `${key}:pending` })))));
  view.figures = figures;
}

function toggle(filter) {
  const on = Object.entries(filter).every(([k, v]) => prefs[k] === v);
  const clearing = 'text' in filter;
  for (const [k, v] of Object.entries(filter)) prefs[k] = on && !clearing ? '' : v;
  view.search.value = prefs.text;
  view.phase.value = prefs.phase;
  view.status.value = prefs.status;
  view.filterChanged = true;
  view.scrollToTop = true;
  schedule();
}

function renderSummary() {
  const c = store.counts;
  const values = {
    tenants: c.tenants, attention: c.attention, paused: c.paused,
    drift: drift ? drift.driftCorrectionsToday : null,
    ...c.phases,
  };
  for (const [key] of SYSTEMS) {
    values[`${key}:error`] = c.systems[key].error;
    values[`${key}:pending`] = c.systems[key].pending;
  }
  for (const [key, { value, el, filter }] of view.figures) {
    const n = values[key];
    const text = !store.synced || n === null || n === undefined ? '–' : count(n);
    if (value.textContent !== text) value.textContent = text;
    if (el.classList.contains('nonzero') !== Boolean(n)) el.classList.toggle('nonzero', Boolean(n));
    if (filter) setAttribute(el, 'aria-pressed', String(Object.entries(filter).every(([k, v]) => prefs[k] === v)));
  }
  const text = store.synced
    ? (store.filtered ? `${count(store.shown.length)} of ${count(store.entries.size)} tenants` : `${count(store.entries.size)} tenants`)
    : 'Loading tenants…';
  if (view.count.textContent !== text) view.count.textContent = text;
}

async function loadDrift() {
  try {
    const reply = await api('GET', '/fleet/summary');
    if (reply.status !== 200) return;
    drift = reply.body;
    if (view) renderSummary();
  } catch {
    // Shown again at the next refresh; the live counts do not depend on it.
  }
}

// ---- the virtualised list --------------------------------------------------------

/** The row height the stylesheet gives (`--row-h`), read again after a resize. */
function rowHeight() {
  if (!view.rowHeight) view.rowHeight = parseFloat(getComputedStyle(view.list).getPropertyValue('--row-h')) || 44;
  return view.rowHeight;
}

/** After a filter change: back to the top of the list if the page was scrolled past it. */
function scrollToList() {
  const top = view.list.getBoundingClientRect().top;
  if (top < 0) window.scrollBy(0, top);
}

/**
 * Puts the rows on screen (plus OVERSCAN) into the body, positioned by
 * their index and in document order (for Tab and screen readers); reuses
 * every row element already there and refills only rows that changed.
 */
function renderWindow() {
  const { body, rows } = view;
  const shown = store.shown;
  const height = rowHeight();
  const total = shown.length;
  const top = body.getBoundingClientRect().top;
  const first = Math.max(0, Math.min(total, Math.floor(-top / height) - OVERSCAN));
  const last = Math.max(first, Math.min(total, Math.ceil((window.innerHeight - top) / height) + OVERSCAN));
  const size = `${total * height}px`;
  if (body.style.height !== size) body.style.height = size;
  const wanted = [];
  for (let i = first; i < last; i += 1) wanted.push(i);
  // A focused row stays while it is still listed, so the keyboard does not lose it.
  const active = document.activeElement;
  const focused = body.contains(active) ? active.closest('.fleet-row') : null;
  const kept = focused && (focused.index < first || focused.index >= last) && shown[focused.index] === focused.entry;
  if (kept) wanted.splice(focused.index < first ? 0 : wanted.length, 0, focused.index);
  const slugs = new Set(wanted.map((i) => shown[i].slug));
  for (const [slug, el] of rows) {
    if (slugs.has(slug)) continue;
    el.remove();
    rows.delete(slug);
  }
  let previous = null;
  for (const i of wanted) {
    const entry = shown[i];
    let el = rows.get(entry.slug);
    if (!el) {
      el = rowElement();
      rows.set(entry.slug, el);
    }
    if (el.entry !== entry || el.version !== entry.version) fillRow(el, entry);
    if (el.index !== i) {
      el.index = i;
      el.style.transform = `translateY(${i * height}px)`;
      el.setAttribute('aria-rowindex', String(i + 2));
    }
    const at = previous ? previous.nextSibling : body.firstChild;
    if (at !== el) body.insertBefore(el, at);
    previous = el;
  }
  if (focused && document.activeElement !== active && active.isConnected) active.focus({ preventScroll: true });
  // Only what differs is written: a frame whose changes are all off screen changes nothing in the page.
  setAttribute(view.list, 'aria-rowcount', String(total + 1));
  setAttribute(view.list, 'data-count', String(store.entries.size));
  setAttribute(view.list, 'data-shown', String(total));
  const empty = !(store.synced && total === 0);
  if (view.empty.hidden !== empty) view.empty.hidden = empty;
}

function setAttribute(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

function rowElement() {
  const link = h('a');
  const cells = {
    slug: h('div', { role: 'cell', class: 'slug' }, link),
    name: h('div', { role: 'cell', class: 'name' }),
    plan: h('div', { role: 'cell', class: 'plan', 'data-label': 'Plan' }),
    phase: h('div', { role: 'cell', class: 'phase' }),
    systems: SYSTEMS.map(([key, label]) => h('div', { role: 'cell', class: `system system-${key}`, 'data-label': label })),
    generation: h('div', { role: 'cell', class: 'generation', 'data-label': 'Generation' }),
  };
  const el = h('div', { class: 'fleet-row', role: 'row' },
    cells.slug, cells.name, cells.plan, cells.phase, cells.systems, cells.generation);
  Object.assign(el, { cells, link, entry: null, version: -1, index: -1 });
  return el;
}

function fillRow(el, entry) {
  const row = entry.row;
  const { cells, link } = el;
  el.entry = entry;
  el.version = entry.version;
  el.dataset.slug = row.slug;
  el.classList.toggle('attention', entry.attention);
  link.href = `#/tenants/${encodeURIComponent(row.slug)}`;
  link.textContent = row.slug;
  cells.name.textContent = row.name;
  cells.name.title = row.name;
  cells.plan.textContent = row.plan;
  cells.phase.replaceChildren(badge(row.status.phase), row.paused ? h('span', { class: 'badge paused' }, 'paused') : '');
  SYSTEMS.forEach(([key], i) => {
    const state = (row.status.systems[key] || {}).state;
    cells.systems[i].replaceChildren(state ? badge(state) : h('span', { class: 'muted' }, '–'));
  });
  const observed = row.status.observedGeneration;
  const behind = observed !== row.generation;
  cells.generation.classList.toggle('behind', behind);
  cells.generation.textContent = behind ? `${observed ?? '–'} → ${row.generation}` : String(row.generation);
  cells.generation.title = `generation ${row.generation}, observed ${observed ?? 'not yet'}`;
}

/** Arrow keys, Page Up/Down, Home and End move between the rows' links. */
function onListKey(event) {
  const row = event.target.closest('.fleet-row');
  if (!row || event.altKey || event.ctrlKey || event.metaKey) return;
  const page = Math.max(1, Math.floor(window.innerHeight / rowHeight()) - 2);
  const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
  let target;
  if (event.key in moves) target = row.index + moves[event.key];
  else if (event.key === 'Home') target = 0;
  else if (event.key === 'End') target = store.shown.length - 1;
  else return;
  event.preventDefault();
  focusRow(Math.max(0, Math.min(store.shown.length - 1, target)));
}

function focusRow(index) {
  const height = rowHeight();
  const bodyTop = view.body.getBoundingClientRect().top;
  const headHeight = view.list.querySelector('.fleet-head').getBoundingClientRect().height;
  const rowTop = bodyTop + index * height;
  if (rowTop < headHeight) window.scrollBy(0, rowTop - headHeight);
  else if (rowTop + height > window.innerHeight) window.scrollBy(0, rowTop + height - window.innerHeight);
  renderWindow();
  const el = view.rows.get(store.shown[index].slug);
  if (el) el.link.focus({ preventScroll: true });
}
