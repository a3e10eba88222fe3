// The tenant page (#/tenants/{slug}): the desired spec, each system's
// state, reason, message, external id and last transition, the events
// timeline, the controller's plan (dry run) and the actions (reconcile,
// pause/resume, edit, delete). It follows its one tenant, in full, with its
// own watch (GET /tenants?watch=true&slug=...), open while the page is.

import { announce, badge, h, show, when } from './dom.js';
import { clearErrors, domainList, field, planSelect, showError } from './forms.js';
import { SYSTEMS } from './fleet-store.js';
import { api, errorText } from './session.js';
import { watch } from './watch.js';

// A tenant the console just received in full (the answer of its create),
// so its page shows at once instead of waiting for its watch.
let fresh = null;

export function remember(tenant) {
  fresh = tenant;
}

/** Shows the page of `slug`; returns what unmounts it. */
export function renderTenant(slug) {
  let tenant = fresh && fresh.slug === slug ? fresh : null;
  fresh = null;
  let page = null; // the page's elements, once the tenant is known
  let incoming = null; // {tenant} of a reset, until its `synced`
  let live = false;
  const liveText = () => (live ? 'Live' : 'Connecting…');

  const changed = () => {
    if (!page) { page = build(slug, () => tenant, (t) => { tenant = t; page.fill(); }, liveText()); return; }
    page.fill();
    page.loadEvents();
  };
  const stop = watch(`/tenants?watch=true&slug=${encodeURIComponent(slug)}`, {
    onEvent: (kind, data) => {
      if (kind === 'reset') { incoming = { tenant: null }; return; }
      if (kind === 'synced') {
        if (!incoming) return;
        const known = incoming.tenant;
        incoming = null;
        if (known) { tenant = known; changed(); } else if (page) gone(slug); else missing(slug);
        return;
      }
      if (!['added', 'modified', 'deleted'].includes(kind) || data.slug !== slug) return;
      if (incoming) { incoming.tenant = kind === 'deleted' ? null : data; return; }
      if (kind === 'deleted') { gone(slug); return; }
      tenant = data;
      changed();
    },
    onLive: (value) => {
      live = value;
      const el = document.getElementById('live');
      if (el) el.textContent = value ? 'Live' : 'Reconnecting…';
    },
    onRefused: () => { if (!page) missing(slug); },
  });
  if (tenant) changed();
  else show(h('h1', {}, slug), h('p', { class: 'muted' }, 'Loading…'), h('a', { href: '#/tenants' }, 'All tenants'));
  return stop;
}

function missing(slug) {
  show(h('h1', {}, slug), h('p', { class: 'muted' }, 'No such tenant, or you may not see it.'), h('a', { href: '#/tenants' }, 'All tenants'));
}

function gone(slug) {
  announce(`Tenant ${slug} was deleted`);
  location.hash = '#/tenants';
}

/** Builds the page of the tenant `current()`; `replace(t)` takes an API answer as the new state. */
function build(slug, current, replace, liveText) {
  const title = h('h1');
  const phase = h('span', { id: 'phase' });
  const spec = h('dl', { class: 'spec' });
  const systems = h('tbody');
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const planOut = h('div', { id: 'plan', 'aria-live': 'polite' });
  const message = h('p', { role: 'status', id: 'action-status' });
  const pause = h('button', { type: 'button', class: 'secondary', id: 'pause' });
  const path = `/tenants/${encodeURIComponent(slug)}`;

  const fill = () => {
    const t = current();
    title.textContent = t.name;
    phase.replaceChildren(badge(t.status.phase, 'Phase'));
    pause.textContent = t.paused ? 'Resume' : 'Pause';
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    spec.replaceChildren(
      ...row('Slug', h('span', { class: 'mono' }, t.slug)), ...row('Plan', t.plan),
      ...row('Domains', t.domains.length ? t.domains.join(', ') : 'none'),
      ...row('Billing e-mail', (t.billingInfo && t.billingInfo.email) || 'none'),
      ...row('On deletion', t.deletionPolicy), ...row('Paused', t.paused ? 'yes' : 'no'),
      ...row('Generation', `${t.generation} (observed ${t.status.observedGeneration ?? '–'})`),
      ...row('Last reconcile', when(t.status.lastReconciledAt)));
    systems.replaceChildren(...SYSTEMS.map(([key, label]) => {
      const s = t.status.systems[key] || {};
      return h('tr', { 'data-system': key },
        h('td', { 'data-label': 'System' }, label),
        h('td', { 'data-label': 'State' }, badge(s.state)),
        h('td', { 'data-label': 'Reason' }, s.reason || '–'),
        h('td', { 'data-label': 'Message' }, s.message || '–'),
        h('td', { 'data-label': 'External id', class: 'mono' }, s.externalId || '–'),
        h('td', { 'data-label': 'Drift corrections' }, String(s.driftCorrections || 0)),
        h('td', { 'data-label': 'Last transition' }, when(s.lastTransitionAt)));
    }));
  };

  const loadEvents = async () => {
    const reply = await api('GET', `${path}/events?limit=50`);
    if (reply.status !== 200) { timeline.replaceChildren(h('li', {}, errorText(reply))); return; }
    const items = reply.body.items.map((e) => h('li', { class: e.action },
      h('strong', {}, e.action.replace('_', ' ')), ` · ${e.system} · ${e.object || ''}`,
      h('div', { class: 'muted' }, when(e.at), e.generation ? ` · generation ${e.generation}` : ''),
      e.message ? h('div', {}, e.message) : null,
      e.fields && Object.keys(e.fields).length ? diffLines(e.fields) : null));
    timeline.replaceChildren(...(items.length ? items : [h('li', { class: 'muted' }, 'Nothing happened yet.')]));
  };

  const loadPlan = async () => {
    planOut.replaceChildren(h('p', { class: 'muted' }, 'Asking the controller for a dry run…'));
    const reply = await api('GET', `${path}/plan?wait=20s`);
    if (reply.status === 202) { planOut.replaceChildren(h('p', {}, 'No controller answered in time; try again.')); return; }
    if (reply.status !== 200) { planOut.replaceChildren(h('p', { class: 'form-error' }, errorText(reply))); return; }
    planOut.replaceChildren(h('p', { class: 'muted' }, `Computed ${when(reply.body.computedAt)} for generation ${reply.body.generation}`),
      ...SYSTEMS.map(([key, label]) => {
        const plan = reply.body.systems[key];
        if (!plan) return h('div', {}, h('h3', {}, label), h('p', { class: 'muted' }, 'not configured'));
        const actions = plan.actions.filter((a) => a.action !== 'none');
        return h('div', { 'data-plan': key }, h('h3', {}, label),
          plan.conflict ? h('p', { class: 'form-error' }, `Conflict: ${plan.conflict}`) : null,
          plan.error ? h('p', { class: 'form-error' }, `Error: ${plan.error}`) : null,
          actions.length ? h('ul', {}, actions.map((a) => h('li', {}, h('strong', {}, a.action), ` ${a.object}`, diffLines(a.fields || {}))))
            : h('p', {}, 'In sync: nothing to change.'));
      }));
  };

  const act = async (what, request) => {
    message.textContent = `${what}…`;
    const reply = await request();
    message.textContent = reply.status < 300 ? `${what}: done.` : `${what} failed: ${errorText(reply)}`;
    return reply;
  };
  pause.addEventListener('click', () => act(current().paused ? 'Resume' : 'Pause',
    () => api('PATCH', path, { paused: !current().paused })));
  const reconcile = h('button', { type: 'button', id: 'reconcile', onclick: () => act('Reconcile', () => api('POST', `${path}/reconcile`)) }, 'Reconcile now');

  // Edit: name, plan, domains, with the server's field errors.
  const t0 = current();
  const name = h('input', { value: t0.name });
  const plan = planSelect(t0.plan);
  const domains = h('textarea', { rows: 3, spellcheck: 'false' });
  domains.value = t0.domains.join('\n');
  const edit = h('form', { novalidate: true, 'aria-labelledby': 'edit-title' },
    field('name', 'Name', name), field('plan', 'Plan', plan),
    field('domains', 'Mail domains', domains, 'One per line.'),
    h('p', { class: 'form-error', role: 'alert' }),
    h('button', { type: 'submit' }, 'Save changes'));
  edit.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(edit);
    const reply = await api('PATCH', path,
      { name: name.value, plan: plan.value, domains: domainList(domains.value) },
      { 'If-Match': `"${current().generation}"` });
    if (reply.status === 200) { replace(reply.body); message.textContent = 'Saved.'; announce('Changes saved'); } else showError(edit, reply);
  });

  // Delete with a typed confirmation.
  const confirmInput = h('input', { autocomplete: 'off', spellcheck: 'false' });
  const remove = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete tenant');
  confirmInput.addEventListener('input', () => { remove.disabled = confirmInput.value !== slug; });
  const del = h('form', { 'aria-labelledby': 'delete-title' },
    field('confirm', `Type ${slug} to confirm`, confirmInput),
    h('p', { class: 'form-error', role: 'alert' }), remove);
  del.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (confirmInput.value !== slug) return;
    const reply = await act('Delete', () => api('DELETE', path));
    if (reply.status === 202) replace(reply.body);
  });

  show(
    h('p', {}, h('a', { href: '#/tenants' }, '← All tenants')),
    title, h('p', {}, phase, ' ', h('span', { class: 'muted', id: 'live' }, liveText)),
    h('div', { class: 'actions' }, reconcile, pause), message,
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'spec-title' }, h('h2', { id: 'spec-title' }, 'Desired spec'), spec),
      h('section', { class: 'card', 'aria-labelledby': 'edit-title' }, h('h2', { id: 'edit-title' }, 'Edit'), edit)),
    h('section', { class: 'card', 'aria-labelledby': 'systems-title' }, h('h2', { id: 'systems-title' }, 'Systems'),
      h('table', { class: 'responsive' }, h('thead', {}, h('tr', {}, ['System', 'State', 'Reason', 'Message', 'External id', 'Drift corrections', 'Last transition'].map((c) => h('th', { scope: 'col' }, c)))), systems)),
    h('section', { class: 'card', 'aria-labelledby': 'plan-title' }, h('h2', { id: 'plan-title' }, 'Plan (dry run)'),
      h('p', {}, h('button', { type: 'button', class: 'secondary', id: 'show-plan', onclick: loadPlan }, 'Show plan')), planOut),
    h('section', { class: 'card', 'aria-labelledby': 'events-title' }, h('h2', { id: 'events-title' }, 'Events'), timeline),
    h('section', { class: 'card', 'aria-labelledby': 'delete-title' }, h('h2', { id: 'delete-title' }, 'Delete'), del));
  // The title is filled after show(); focus it once it has text.
  fill();
  title.tabIndex = -1;
  title.focus();
  loadEvents();
  return { fill, loadEvents };
}

/** `field: from → to` lines of a change, as a small diff. */
function diffLines(fields) {
  const text = (v) => (v === null || v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v));
  return h('div', { class: 'diff' }, Object.entries(fields).map(([name, change]) => h('div', {},
    `${name}: `, h('span', { class: 'from' }, `− ${text(change && change.from)}`), '  ',
    h('span', { class: 'to' }, `+ ${text(change && change.to)}`))));
}
