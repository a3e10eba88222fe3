// The dezky operator console: vanilla JavaScript, no build step, served by
// the API at /console/. It signs in with the authorization code flow and
// PKCE (the token lives in this tab's sessionStorage only), keeps every
// visible tenant current from GET /tenants?watch=true (read with fetch,
// because EventSource cannot send a bearer token), and otherwise calls the
// same API routes as any client. Routes are hashes: #/tenants,
// #/tenants/{slug}, #/new.
'use strict';

const SYSTEMS = [['authentik', 'Authentik'], ['stalwart', 'Stalwart'], ['ocis', 'oCIS']];
const PHASES = ['pending', 'active', 'degraded', 'deleting'];
// Longest wait for one API answer (the plan waits up to 20 s on the server).
const REQUEST_TIMEOUT = 30000;
// A token that expires sends the browser to the issuer again (a live
// session there comes straight back), at most once in this long.
const REAUTH_EVERY = 60000;
const state = {
  config: null,
  token: sessionStorage.getItem('token'),
  me: null,
  tenants: new Map(), // slug -> tenant, kept by the watch
  synced: false, // the watch delivered a full state
  live: false,
  watch: null, // AbortController of the running watch
  view: null, // the current page: {onChange(kind, tenant)}
};

// ---- DOM helpers ----------------------------------------------------------

/** An element with attributes (on* as listeners) and children (strings are text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const main = () => document.getElementById('main');

function announce(text) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 30);
}

function show(...children) {
  const el = main();
  el.replaceChildren(...children);
  const heading = el.querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

function when(iso) {
  if (!iso) return 'never';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function badge(value, label) {
  const v = value || 'pending';
  return h('span', { class: `badge ${v}` }, label ? `${label}: ${v}` : v);
}

// ---- API ------------------------------------------------------------------

/** Calls the API; `{status, body}`. A 401 signs out. */
async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}`, ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  init.signal = AbortSignal.timeout(REQUEST_TIMEOUT);
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  if (response.status === 401) {
    expired();
    throw new Error('unauthorized');
  }
  return { status: response.status, body: parsed };
}

function errorText(reply) {
  const error = reply.body && reply.body.error;
  return error ? error.message : `HTTP ${reply.status}`;
}

// ---- sign-in ----------------------------------------------------------------

function b64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomToken(size) {
  return b64url(crypto.getRandomValues(new Uint8Array(size)));
}

function redirectUri() {
  return `${location.origin}/console/`;
}

async function startSignIn() {
  const verifier = randomToken(32);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const st = randomToken(16);
  sessionStorage.setItem('pkce', JSON.stringify({ verifier, state: st, hash: location.hash }));
  const url = new URL(state.config.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: state.config.clientId,
    redirect_uri: redirectUri(),
    scope: 'openid profile email',
    state: st,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Back from the issuer with `?code=&state=` (or `?error=`). */
async function finishSignIn(params) {
  const pending = JSON.parse(sessionStorage.getItem('pkce') || 'null');
  sessionStorage.removeItem('pkce');
  history.replaceState(null, '', `/console/${pending && pending.hash ? pending.hash : ''}`);
  if (params.get('error')) throw new Error(params.get('error_description') || params.get('error'));
  if (!pending || pending.state !== params.get('state')) throw new Error('the sign-in answer does not belong to this tab; try again');
  const response = await fetch(state.config.tokenEndpoint, {
    method: 'POST',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: state.config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) throw new Error(body.error_description || `token endpoint answered ${response.status}`);
  return body.access_token;
}

/** The token was refused (it expired): sign in again through the issuer,
 * unless that just happened, then ask. */
function expired() {
  const last = Number(sessionStorage.getItem('reauthAt') || 0);
  const canRedirect = state.config.clientId && state.config.authorizationEndpoint;
  if (canRedirect && Date.now() - last > REAUTH_EVERY) {
    sessionStorage.setItem('reauthAt', String(Date.now()));
    sessionStorage.removeItem('token');
    state.token = null;
    if (state.watch) state.watch.abort();
    startSignIn();
    return;
  }
  signOut('Your session ended; please sign in again.');
}

function signOut(message) {
  sessionStorage.removeItem('token');
  sessionStorage.setItem('signedOut', '1');
  state.token = null;
  state.me = null;
  if (state.watch) state.watch.abort();
  state.watch = null;
  state.tenants = new Map();
  document.getElementById('nav').hidden = true;
  renderSignIn(message);
}

function renderSignIn(message) {
  state.view = null;
  const parts = [h('h1', {}, 'Sign in')];
  if (message) parts.push(h('p', { class: 'form-error', role: 'alert' }, message));
  if (state.config.clientId && state.config.authorizationEndpoint) {
    parts.push(h('p', {}, h('button', { type: 'button', onclick: () => startSignIn() }, 'Sign in with your identity provider')));
  } else {
    parts.push(h('p', { class: 'muted' }, 'No console client is configured (CONSOLE_CLIENT_ID).'));
  }
  if (state.config.tokenPaste) {
    const field = h('textarea', { id: 'paste-token', name: 'token', rows: 4, autocomplete: 'off', spellcheck: 'false' });
    parts.push(h('form', {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        const token = field.value.trim();
        if (token) await signedIn(token);
      },
    },
    h('div', { class: 'field' },
      h('label', { for: 'paste-token' }, 'Access token (demo only)'),
      field,
      h('p', { class: 'hint' }, 'Paste a bearer token, e.g. the one `provisioner demo` prints.')),
    h('button', { type: 'submit', class: 'secondary' }, 'Use this token')));
  }
  show(h('section', { class: 'card' }, parts));
}

async function signedIn(token) {
  state.token = token;
  sessionStorage.setItem('token', token);
  sessionStorage.removeItem('signedOut');
  let reply;
  try { reply = await api('GET', '/users/me'); } catch { return; }
  if (reply.status !== 200) { signOut(errorText(reply)); return; }
  state.me = reply.body;
  const user = state.me.user;
  document.getElementById('who').textContent = `${user.name || user.email}${user.platformAdmin ? ' (platform admin)' : ''}`;
  document.getElementById('nav').hidden = false;
  startWatch();
  route();
}

// ---- the watch stream ---------------------------------------------------------

function startWatch() {
  if (state.watch) state.watch.abort();
  const controller = new AbortController();
  state.watch = controller;
  runWatch(controller.signal);
}

function setLive(live) {
  state.live = live;
  const el = document.getElementById('live');
  if (el) el.textContent = live ? 'Live' : 'Reconnecting…';
}

/** Reads the SSE stream, reconnecting with Last-Event-ID. */
async function runWatch(signal) {
  let lastId = '';
  let delay = 500;
  let incoming = null; // tenants of a reset, until its `synced`
  const dispatch = (event) => {
    const data = event.data.join('\n');
    if (event.event === 'reset') { incoming = new Map(); return; }
    if (event.event === 'synced') {
      if (incoming) state.tenants = incoming;
      incoming = null;
      state.synced = true;
      if (state.view) state.view.onChange('synced', null);
      return;
    }
    if (!['added', 'modified', 'deleted'].includes(event.event)) return;
    const tenant = JSON.parse(data);
    if (incoming) { incoming.set(tenant.slug, tenant); return; }
    const before = state.tenants.get(tenant.slug);
    if (event.event === 'deleted') state.tenants.delete(tenant.slug);
    else state.tenants.set(tenant.slug, tenant);
    if (before && event.event === 'modified' && before.status.phase !== tenant.status.phase) {
      announce(`${tenant.slug} is now ${tenant.status.phase}`);
    }
    if (state.view) state.view.onChange(event.event, tenant);
  };
  while (!signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const response = await fetch('/tenants?watch=true', { headers, signal });
      if (response.status === 401) { expired(); return; }
      if (!response.ok) throw new Error(`watch answered ${response.status}`);
      setLive(true);
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let event = { event: 'message', data: [], id: undefined };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n')) >= 0) {
          let line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            if (event.id !== undefined) lastId = event.id;
            if (event.data.length) dispatch(event);
            event = { event: 'message', data: [], id: undefined };
            continue;
          }
          if (line.startsWith(':')) continue; // heartbeat
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? '' : line.slice(colon + 1);
          if (text.startsWith(' ')) text = text.slice(1);
          if (field === 'event') event.event = text;
          else if (field === 'data') event.data.push(text);
          else if (field === 'id') event.id = text;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

// ---- pages --------------------------------------------------------------------

function route() {
  if (!state.token) return;
  const hash = location.hash || '#/tenants';
  const tenant = hash.match(/^#\/tenants\/([^/]+)$/);
  if (hash === '#/new') renderCreate();
  else if (tenant) renderTenant(decodeURIComponent(tenant[1]));
  else renderTenants();
}

function driftCorrections(tenant) {
  return SYSTEMS.reduce((sum, [key]) => sum + ((tenant.status.systems[key] || {}).driftCorrections || 0), 0);
}

function renderTenants() {
  const search = h('input', { id: 'search', type: 'search', placeholder: 'slug, name or domain', autocomplete: 'off' });
  const phase = h('select', { id: 'phase-filter' },
    h('option', { value: '' }, 'All phases'), PHASES.map((p) => h('option', { value: p }, p)));
  const body = h('tbody');
  const count = h('p', { class: 'muted', id: 'count' });
  const fill = () => {
    const needle = search.value.trim().toLowerCase();
    const rows = [...state.tenants.values()]
      .filter((t) => !phase.value || t.status.phase === phase.value)
      .filter((t) => !needle || [t.slug, t.name, ...t.domains].some((s) => s.toLowerCase().includes(needle)))
      .sort((a, b) => a.slug.localeCompare(b.slug))
      .map((t) => h('tr', { 'data-slug': t.slug },
        h('td', { 'data-label': 'Tenant' }, h('a', { href: `#/tenants/${encodeURIComponent(t.slug)}` }, t.name), h('div', { class: 'muted mono' }, t.slug)),
        h('td', { 'data-label': 'Phase', class: 'phase' }, badge(t.status.phase)),
        SYSTEMS.map(([key, label]) => h('td', { 'data-label': label, class: `system-${key}` }, badge((t.status.systems[key] || {}).state))),
        h('td', { 'data-label': 'Drift corrections', class: 'drift' }, String(driftCorrections(t))),
        h('td', { 'data-label': 'Last reconcile' }, when(t.status.lastReconciledAt))));
    body.replaceChildren(...rows);
    count.textContent = state.synced ? `${rows.length} of ${state.tenants.size} tenants` : 'Loading tenants…';
  };
  search.addEventListener('input', fill);
  phase.addEventListener('change', fill);
  state.view = { onChange: fill };
  show(
    h('div', { class: 'actions header-row' },
      h('h1', {}, 'Tenants'),
      h('a', { class: 'button', href: '#/new' }, 'New tenant')),
    h('p', { class: 'muted', id: 'live', 'aria-live': 'polite' }, state.live ? 'Live' : 'Connecting…'),
    h('div', { class: 'filters' },
      h('div', {}, h('label', { for: 'search' }, 'Search'), search),
      h('div', {}, h('label', { for: 'phase-filter' }, 'Phase'), phase)),
    count,
    h('table', { class: 'responsive', id: 'tenants' },
      h('caption', { class: 'sr-only' }, 'Tenants with their phase and the state of each system'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tenant'), h('th', { scope: 'col' }, 'Phase'),
        SYSTEMS.map(([, label]) => h('th', { scope: 'col' }, label)),
        h('th', { scope: 'col' }, 'Drift corrections'), h('th', { scope: 'col' }, 'Last reconcile'))),
      body));
  fill();
}

/** A labelled form field with a slot for the server's error. */
function field(name, label, control, hint) {
  control.id = `f-${name}`;
  control.name = name;
  const error = h('p', { class: 'error', id: `f-${name}-error`, hidden: true });
  const described = [hint ? `f-${name}-hint` : null, `f-${name}-error`].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: control.id }, label), control,
    hint ? h('p', { class: 'hint', id: `f-${name}-hint` }, hint) : null, error);
}

function clearErrors(form) {
  form.querySelectorAll('.field').forEach((f) => {
    f.classList.remove('invalid');
    const e = f.querySelector('.error');
    e.hidden = true;
    e.textContent = '';
    f.querySelector('input, select, textarea').removeAttribute('aria-invalid');
  });
  form.querySelector('.form-error').textContent = '';
}

/** Shows the API's error next to its field (`domains[2]` → domains). */
function showError(form, reply) {
  const error = (reply.body && reply.body.error) || { message: `HTTP ${reply.status}` };
  const name = (error.field || '').replace(/\[\d+\]$/, '').replace(/\.email$/, 'Email');
  const holder = name && form.querySelector(`.field[data-field="${name}"]`);
  if (!holder) {
    form.querySelector('.form-error').textContent = error.message;
    return;
  }
  holder.classList.add('invalid');
  const text = holder.querySelector('.error');
  text.textContent = error.message;
  text.hidden = false;
  const control = holder.querySelector('input, select, textarea');
  control.setAttribute('aria-invalid', 'true');
  control.focus();
}

function planSelect(current) {
  return h('select', {}, state.config.plans.map((p) => h('option', { value: p, selected: p === current }, p)));
}

function domainList(text) {
  return text.split(/[\s,]+/).map((d) => d.trim()).filter(Boolean);
}

function renderCreate() {
  state.view = null;
  const slug = h('input', { autocomplete: 'off', spellcheck: 'false', required: true });
  const name = h('input', { autocomplete: 'organization', required: true });
  const plan = planSelect(state.config.defaultPlan);
  const domains = h('textarea', { rows: 3, spellcheck: 'false' });
  const email = h('input', { type: 'email', autocomplete: 'email' });
  const policy = h('select', {}, h('option', { value: 'delete' }, 'delete'), h('option', { value: 'orphan' }, 'orphan'));
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'create-title' },
    field('slug', 'Slug', slug, 'Lowercase letters, digits and dashes; 3 to 63 characters; cannot change later.'),
    field('name', 'Name', name),
    field('plan', 'Plan', plan),
    field('domains', 'Mail domains', domains, 'One per line (or separated by commas).'),
    field('billingInfoEmail', 'Billing e-mail', email),
    field('deletionPolicy', 'On deletion', policy, 'delete removes the upstream objects; orphan leaves them.'),
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create tenant'), h('a', { href: '#/tenants' }, 'Cancel')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { slug: slug.value.trim(), name: name.value, plan: plan.value, domains: domainList(domains.value), deletionPolicy: policy.value };
    if (email.value.trim()) body.billingInfo = { email: email.value.trim() };
    const reply = await api('POST', '/tenants', body);
    if (reply.status === 201) {
      state.tenants.set(reply.body.slug, reply.body);
      announce(`Tenant ${reply.body.slug} created`);
      location.hash = `#/tenants/${encodeURIComponent(reply.body.slug)}`;
    } else {
      showError(form, reply);
    }
  });
  show(h('h1', { id: 'create-title' }, 'New tenant'), form);
}

function renderTenant(slug) {
  const tenant = () => state.tenants.get(slug);
  if (!tenant()) {
    state.view = { onChange: () => { if (tenant()) renderTenant(slug); } };
    show(h('h1', {}, slug), h('p', { class: 'muted' }, state.synced ? 'No such tenant, or you may not see it.' : 'Loading…'), h('a', { href: '#/tenants' }, 'All tenants'));
    return;
  }
  const title = h('h1');
  const phase = h('span', { id: 'phase' });
  const spec = h('dl', { class: 'spec' });
  const systems = h('tbody');
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const planOut = h('div', { id: 'plan', 'aria-live': 'polite' });
  const message = h('p', { role: 'status', id: 'action-status' });
  const pause = h('button', { type: 'button', class: 'secondary', id: 'pause' });

  const fill = () => {
    const t = tenant();
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
    const reply = await api('GET', `/tenants/${encodeURIComponent(slug)}/events?limit=50`);
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
    const reply = await api('GET', `/tenants/${encodeURIComponent(slug)}/plan?wait=20s`);
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
  pause.addEventListener('click', () => act(tenant().paused ? 'Resume' : 'Pause',
    () => api('PATCH', `/tenants/${encodeURIComponent(slug)}`, { paused: !tenant().paused })));
  const reconcile = h('button', { type: 'button', id: 'reconcile', onclick: () => act('Reconcile', () => api('POST', `/tenants/${encodeURIComponent(slug)}/reconcile`)) }, 'Reconcile now');

  // Edit: name, plan, domains, with the server's field errors.
  const t0 = tenant();
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
    const reply = await api('PATCH', `/tenants/${encodeURIComponent(slug)}`,
      { name: name.value, plan: plan.value, domains: domainList(domains.value) },
      { 'If-Match': `"${tenant().generation}"` });
    if (reply.status === 200) { state.tenants.set(slug, reply.body); fill(); message.textContent = 'Saved.'; announce('Changes saved'); } else showError(edit, reply);
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
    const reply = await act('Delete', () => api('DELETE', `/tenants/${encodeURIComponent(slug)}`));
    if (reply.status === 202) { state.tenants.set(slug, reply.body); fill(); }
  });

  state.view = {
    onChange: (kind, changed) => {
      if (kind === 'synced' && !tenant()) { gone(slug); return; }
      if (!changed || changed.slug !== slug) return;
      if (kind === 'deleted') { gone(slug); return; }
      fill();
      loadEvents();
    },
  };
  show(
    h('p', {}, h('a', { href: '#/tenants' }, '← All tenants')),
    title, h('p', {}, phase, ' ', h('span', { class: 'muted', id: 'live' }, state.live ? 'Live' : 'Connecting…')),
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
}

function gone(slug) {
  announce(`Tenant ${slug} was deleted`);
  location.hash = '#/tenants';
}

/** `field: from → to` lines of a change, as a small diff. */
function diffLines(fields) {
  const show = (v) => (v === null || v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v));
  return h('div', { class: 'diff' }, Object.entries(fields).map(([name, change]) => h('div', {},
    `${name}: `, h('span', { class: 'from' }, `− ${show(change && change.from)}`), '  ',
    h('span', { class: 'to' }, `+ ${show(change && change.to)}`))));
}

// ---- start ------------------------------------------------------------------------

async function boot() {
  document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', route);
  state.config = await (await fetch('config.json')).json();
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) {
    try {
      await signedIn(await finishSignIn(params));
    } catch (error) {
      renderSignIn(`Sign-in failed: ${error.message}`);
    }
    return;
  }
  if (state.token) { await signedIn(state.token); return; }
  // The demo signs its admin in at once (unless they just signed out).
  if (state.config.tokenPaste && state.config.clientId && !sessionStorage.getItem('signedOut')) {
    await startSignIn();
    return;
  }
  renderSignIn();
}

boot().catch((error) => show(h('h1', {}, 'The console could not start'), h('p', {}, String(error))));
