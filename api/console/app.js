// The dezky operator console: vanilla JavaScript modules, no build step,
// served by the API at /console/. This file starts it: the sign-in page,
// what signing in and out does, and the routes (hashes): #/tenants (the
// fleet view, fleet.js), #/tenants/{slug} (tenant.js), #/new (create.js).
// Everything else calls the same API routes as any client (session.js).

import { renderCreate } from './create.js';
import { h, show } from './dom.js';
import { renderFleet, startFleet, stopFleet } from './fleet.js';
import { canRedirect, finishSignIn, forgetTokens, session, api, errorText, startSignIn } from './session.js';
import { renderTenant } from './tenant.js';

let unmount = null; // stops what the current page runs (its watch, timers, listeners)

function leavePage() {
  if (unmount) unmount();
  unmount = null;
}

function route() {
  if (!session.token) return;
  leavePage();
  const hash = location.hash || '#/tenants';
  const tenant = hash.match(/^#\/tenants\/([^/]+)$/);
  if (hash === '#/new') renderCreate();
  else if (tenant) unmount = renderTenant(decodeURIComponent(tenant[1]));
  else unmount = renderFleet();
}

function signOut(message) {
  forgetTokens();
  sessionStorage.setItem('signedOut', '1');
  session.me = null;
  stopWatches();
  document.getElementById('nav').hidden = true;
  renderSignIn(message);
}

function stopWatches() {
  leavePage();
  stopFleet();
}

function renderSignIn(message) {
  leavePage();
  const parts = [h('h1', {}, 'Sign in')];
  if (message) parts.push(h('p', { class: 'form-error', role: 'alert' }, message));
  if (canRedirect()) {
    parts.push(h('p', {}, h('button', { type: 'button', onclick: () => startSignIn() }, 'Sign in with your identity provider')));
  } else {
    parts.push(h('p', { class: 'muted' }, 'No console client is configured (CONSOLE_CLIENT_ID).'));
  }
  if (session.config.tokenPaste) {
    const field = h('textarea', { id: 'paste-token', name: 'token', rows: 4, autocomplete: 'off', spellcheck: 'false' });
    parts.push(h('form', {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        const token = field.value.trim();
        if (token) { forgetTokens(); await signedIn(token); }
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
  performance.mark('dezky:signed-in');
  session.token = token;
  sessionStorage.setItem('token', token);
  sessionStorage.removeItem('signedOut');
  let reply;
  try { reply = await api('GET', '/users/me'); } catch { return; }
  if (reply.status !== 200) { signOut(errorText(reply)); return; }
  session.me = reply.body;
  const user = session.me.user;
  document.getElementById('who').textContent = `${user.name || user.email}${user.platformAdmin ? ' (platform admin)' : ''}`;
  document.getElementById('nav').hidden = false;
  startFleet();
  route();
}

async function boot() {
  session.signOut = signOut;
  session.stopWatches = stopWatches;
  document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', route);
  session.config = await (await fetch('config.json')).json();
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) {
    try {
      await signedIn(await finishSignIn(params));
    } catch (error) {
      renderSignIn(`Sign-in failed: ${error.message}`);
    }
    return;
  }
  if (session.token) { await signedIn(session.token); return; }
  // The demo signs its admin in at once (unless they just signed out).
  if (session.config.tokenPaste && session.config.clientId && !sessionStorage.getItem('signedOut')) {
    await startSignIn();
    return;
  }
  renderSignIn();
}

boot().catch((error) => show(h('h1', {}, 'The console could not start'), h('p', {}, String(error))));
