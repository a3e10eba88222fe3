// The fleet's rows and everything derived from them, without the DOM: the
// rows by slug (from GET /tenants?watch=true&view=fleet), their order
// under the chosen sort, the subset the filters let through, and the
// summary counts. Watch events only mark their slug dirty; `apply()` folds
// all of them in at once: counts are adjusted by the changed rows alone, a
// row moves in the order only when its sort key changed, and the filtered
// subset is recomputed (one pass, when next read) only when a row
// appeared, left, moved or changed whether it matches.

export const SYSTEMS = [['authentik', 'Authentik'], ['stalwart', 'Stalwart'], ['ocis', 'oCIS']];
export const PHASES = ['pending', 'active', 'degraded', 'deleting'];
export const STATES = ['ok', 'skipped', 'error', 'pending'];

// Above this many changes in one frame, sorting everything again is
// cheaper than moving rows one by one (each move shifts the array).
const RESORT_ABOVE = 256;

const stateOf = (row, system) => (row.status.systems[system] || {}).state;

/** Degraded, or a system in error (the server's definition). */
export const needsAttention = (row) => row.status.phase === 'degraded'
  || SYSTEMS.some(([key]) => stateOf(row, key) === 'error');

const bySlug = (a, b) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0);

/** The sorts: a comparator of entries, and whether a change moves a row. */
export const SORTS = {
  attention: {
    label: 'Needs attention first',
    compare: (a, b) => (b.attention - a.attention) || bySlug(a, b),
    moved: (before, after) => needsAttention(before) !== needsAttention(after),
  },
  slug: { label: 'Slug', compare: bySlug, moved: () => false },
  updated: {
    label: 'Recently changed',
    compare: (a, b) => (a.row.updatedAt < b.row.updatedAt ? 1 : a.row.updatedAt > b.row.updatedAt ? -1 : bySlug(a, b)),
    moved: (before, after) => before.updatedAt !== after.updatedAt,
  },
};

/** The summary counts, all zero. */
function emptyCounts() {
  const systems = {};
  for (const [key] of SYSTEMS) systems[key] = Object.fromEntries(STATES.map((s) => [s, 0]));
  return { tenants: 0, phases: Object.fromEntries(PHASES.map((p) => [p, 0])), paused: 0, attention: 0, systems };
}

/** Adds (`sign` 1) or removes (-1) one row from `counts`; a system not observed yet is not counted. */
function tally(counts, row, sign) {
  counts.tenants += sign;
  counts.phases[row.status.phase] = (counts.phases[row.status.phase] || 0) + sign;
  if (row.paused) counts.paused += sign;
  if (needsAttention(row)) counts.attention += sign;
  for (const [key] of SYSTEMS) {
    const state = stateOf(row, key);
    if (state) counts.systems[key][state] = (counts.systems[key][state] || 0) + sign;
  }
}

/** Whether two rows count the same in the summary. */
function sameTally(a, b) {
  return a.status.phase === b.status.phase && a.paused === b.paused
    && SYSTEMS.every(([key]) => stateOf(a, key) === stateOf(b, key));
}

/** A row as the store keeps it: the same object for a slug's whole life, so arrays can hold it. */
function entryOf(row) {
  const entry = { slug: row.slug, row: null, attention: false, haystack: '', version: 0 };
  update(entry, row);
  return entry;
}

function update(entry, row) {
  entry.row = row;
  entry.attention = needsAttention(row);
  entry.haystack = `${row.slug}\n${row.name}`.toLowerCase();
  entry.version += 1;
}

export class FleetStore {
  constructor() {
    this.entries = new Map(); // slug -> entry
    this.order = []; // every entry, sorted by `this.sort`
    this.visible = []; // the entries the filter lets through, in order (`order` itself when unfiltered)
    this.stale = false; // `visible` is recomputed when next read
    this.counts = emptyCounts();
    this.sort = 'attention';
    this.filter = { text: '', phase: '', status: '' };
    this.synced = false; // a complete state was applied
    this.incoming = null; // rows of a reset, until its `synced`
    this.replacement = null; // a complete state not applied yet
    this.dirty = new Map(); // slug -> the row it now has, or null when deleted
  }

  /** One watch event; true when `apply()` has something to do. */
  receive(kind, data) {
    if (kind === 'reset') { this.incoming = new Map(); return false; }
    if (kind === 'synced') {
      this.replacement = this.incoming || this.replacement;
      this.incoming = null;
      if (this.replacement) this.dirty.clear();
      return true;
    }
    if (kind !== 'added' && kind !== 'modified' && kind !== 'deleted') return false;
    if (this.incoming) {
      if (kind === 'deleted') this.incoming.delete(data.slug);
      else this.incoming.set(data.slug, data);
      return false;
    }
    this.dirty.set(data.slug, kind === 'deleted' ? null : data);
    return true;
  }

  /**
   * Folds the received events in. Returns what changed: `counts` (a
   * summary count), `reshown` (the filtered list's membership or order),
   * `changed` (the slugs of rows modified in place), `phases` ([slug,
   * phase] of rows whose phase changed) and `completed` (a complete state
   * was applied).
   */
  apply() {
    const result = { counts: false, reshown: false, changed: [], phases: [], completed: false };
    if (this.replacement) {
      this.entries = new Map();
      this.counts = emptyCounts();
      for (const row of this.replacement.values()) {
        this.entries.set(row.slug, entryOf(row));
        tally(this.counts, row, 1);
      }
      this.replacement = null;
      this.order = [...this.entries.values()].sort(SORTS[this.sort].compare);
      this.synced = true;
      Object.assign(result, { counts: true, reshown: true, completed: true });
    }
    if (this.dirty.size === 0) {
      if (result.reshown) this.stale = true;
      return result;
    }
    const resort = this.dirty.size > RESORT_ABOVE;
    const sort = SORTS[this.sort];
    let rematch = false;
    for (const [slug, row] of this.dirty) {
      const entry = this.entries.get(slug);
      if (!row) {
        if (!entry) continue;
        result.counts = true;
        tally(this.counts, entry.row, -1);
        this.entries.delete(slug);
        if (!resort) this.order.splice(this.indexOf(entry), 1);
        rematch = true;
        continue;
      }
      if (!entry) {
        const added = entryOf(row);
        result.counts = true;
        tally(this.counts, row, 1);
        this.entries.set(slug, added);
        if (!resort) this.order.splice(this.insertionPoint(added), 0, added);
        rematch = true;
        continue;
      }
      const before = entry.row;
      if (!sameTally(before, row)) {
        result.counts = true;
        tally(this.counts, before, -1);
        tally(this.counts, row, 1);
      }
      result.changed.push(slug);
      if (before.status.phase !== row.status.phase) result.phases.push([slug, row.status.phase]);
      const moved = sort.moved(before, row);
      const matched = this.matches(entry);
      if (moved && !resort) this.order.splice(this.indexOf(entry), 1);
      update(entry, row);
      if (moved && !resort) this.order.splice(this.insertionPoint(entry), 0, entry);
      if (moved || matched !== this.matches(entry)) rematch = true;
    }
    this.dirty.clear();
    if (resort) this.order = [...this.entries.values()].sort(sort.compare);
    if (rematch || result.reshown) {
      this.stale = true;
      result.reshown = true;
    }
    return result;
  }

  /** Sets the filters (`text` matches slug or name, case-insensitive). */
  setFilter(filter) {
    this.filter = { text: filter.text.trim().toLowerCase(), phase: filter.phase, status: filter.status };
    this.refilter();
  }

  setSort(sort) {
    if (!SORTS[sort] || sort === this.sort) return;
    this.sort = sort;
    this.order.sort(SORTS[sort].compare);
    this.refilter();
  }

  get filtered() {
    return Boolean(this.filter.text || this.filter.phase || this.filter.status);
  }

  matches(entry) {
    const { text, phase, status } = this.filter;
    const row = entry.row;
    if (phase && row.status.phase !== phase) return false;
    if (text && !entry.haystack.includes(text)) return false;
    if (!status) return true;
    if (status === 'attention') return entry.attention;
    if (status === 'paused') return row.paused;
    const [system, state] = status.split(':');
    return stateOf(row, system) === state;
  }

  /** The entries the filters let through, in order; one pass over all rows when something changed since the last read. */
  get shown() {
    if (this.stale) this.refilter();
    return this.visible;
  }

  refilter() {
    this.visible = this.filtered ? this.order.filter((entry) => this.matches(entry)) : this.order;
    this.stale = false;
  }

  /** Where `entry` is in `order` (binary search on its current key). */
  indexOf(entry) {
    const i = this.insertionPoint(entry);
    if (this.order[i] === entry) return i;
    return this.order.indexOf(entry); // never expected: the key changed behind our back
  }

  /** The first index whose entry does not sort before `entry`. */
  insertionPoint(entry) {
    const compare = SORTS[this.sort].compare;
    let low = 0;
    let high = this.order.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compare(this.order[mid], entry) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
