// The operator console in a real headless Chromium (Debian's, driven by
// playwright-core): the real binary (`provisioner simulate` and
// `provisioner serve` with its embedded mongod) and the flow of issue 12:
// sign in through the simulated Authentik, create a tenant from the form
// (an invalid slug shows the field error), see it go from pending to
// active without a reload, break it out of band and see the drift
// correction in its timeline, pause it and see the plan, delete it, sign
// out. Saves docs/console-tenants.png and docs/console-tenant.png.
//
// Run: ./scripts/browser-test.sh (or `make browser-test`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { binary, freePort, openPage, root, start, until } from './support.mjs';

test('the console signs in, creates, follows live, heals, pauses, plans and deletes a tenant', { timeout: 240_000 }, async (t) => {
  const apiPort = await freePort();
  const mongodPort = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dezky-browser-'));
  const listen = `127.0.0.1:${apiPort}`;
  const sims = await start(
    ['simulate', '--authentik-port', '0', '--stalwart-port', '0', '--ocis-port', '0', '--listen-addr', listen],
    {}, (out) => out.includes('export TOKEN='));
  t.after(() => sims.child.kill('SIGTERM'));
  const env = Object.fromEntries([...sims.out().matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
  assert.equal(env.CONSOLE_CLIENT_ID, 'dezky-console');
  const serveEnv = {
    ...env, LISTEN_ADDR: listen, MONGOD_DATA_DIR: dataDir, MONGOD_PORT: String(mongodPort),
    MONGOD_BIN: process.env.MONGOD_BIN || path.join(root, '.cache/mongod/bin/mongod'),
    RUST_LOG: 'warn',
  };
  const serve = spawn(binary, ['serve'], { env: { ...process.env, ...serveEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  let serveErr = '';
  serve.stderr.on('data', (chunk) => { serveErr += chunk; });
  t.after(() => new Promise((resolve) => {
    serve.once('exit', () => { rmSync(dataDir, { recursive: true, force: true }); resolve(); });
    serve.kill('SIGTERM');
  }));
  const api = `http://${listen}`;
  await until('the API to be ready', async () => (await fetch(`${api}/readyz`)).ok, 90_000)
    .catch((e) => { throw new Error(`${e.message}\n${serveErr}`); });

  const { page, errors } = await openPage((fn) => t.after(fn));

  // Sign in through the simulated Authentik (authorization code + PKCE).
  await page.goto(`${api}/console/`);
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.getByRole('heading', { name: 'Tenants' }).waitFor();
  assert.equal(new URL(page.url()).search, '', 'the code is gone from the address bar');
  assert.ok(await page.evaluate(() => sessionStorage.getItem('token')), 'the token is in session storage');
  assert.match(await page.locator('#who').textContent(), /platform admin/);
  // The watch delivers the default tenant without a reload.
  await page.locator('#tenants [role="row"][data-slug="dezky"]').waitFor();
  await page.evaluate(() => { window.__sameDocument = true; });

  // Create from the form, with the keyboard; an invalid slug shows the API's error at the field.
  await page.getByRole('link', { name: 'New tenant' }).first().click();
  await page.getByLabel('Slug').fill('Bad_Slug');
  await page.getByLabel('Name').fill('Browser Co');
  await page.getByLabel('Mail domains').fill('browser-co.test');
  await page.getByLabel('Name').press('Enter');
  const slugError = page.locator('#f-slug-error');
  await slugError.waitFor({ state: 'visible' });
  assert.match(await slugError.textContent(), /lowercase letters, digits/);
  assert.equal(await page.getByLabel('Slug').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-slug', 'focus moves to the invalid field');

  // Record every phase the page shows, from the POST answer on.
  await page.evaluate(() => {
    window.__phases = [];
    new MutationObserver(() => {
      const phase = document.querySelector('#phase .badge');
      if (phase && window.__phases.at(-1) !== phase.textContent) window.__phases.push(phase.textContent);
    }).observe(document.getElementById('main'), { subtree: true, childList: true, characterData: true });
  });
  await page.getByLabel('Slug').fill('browser-co');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.getByRole('heading', { name: 'Browser Co' }).waitFor();
  await page.locator('#phase .badge.active').waitFor();
  const phases = await page.evaluate(() => window.__phases);
  assert.deepEqual([phases[0], phases.at(-1)], ['Phase: pending', 'Phase: active'], `phases shown: ${phases}`);
  assert.ok(await page.evaluate(() => window.__sameDocument), 'no reload');

  // The tenants page shows it active, live; search and phase filter narrow the list.
  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  const row = page.locator('#tenants [role="row"][data-slug="browser-co"]');
  await row.locator('.phase .badge.active').waitFor();
  await page.getByLabel('Search').fill('browser');
  await until('the search to narrow the list', async () => (await page.locator('#tenants .fleet-body [role="row"]').count()) === 1);
  await page.getByLabel('Search').fill('');
  await page.getByLabel('Phase').selectOption('deleting');
  await until('the phase filter to hide active tenants', async () => (await page.locator('#tenants .fleet-body [role="row"]').count()) === 0);
  await page.getByLabel('Phase').selectOption('');
  await row.waitFor();
  await page.screenshot({ path: path.join(root, 'docs/console-tenants.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'tenants page fits 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Break it out of band: rename its group in the simulated Authentik.
  const authentik = (p, init = {}) => fetch(`${env.AUTHENTIK_API_URL}/api/v3/core/groups/${p}`, {
    ...init, headers: { Authorization: `Bearer ${env.AUTHENTIK_TOKEN}`, 'Content-Type': 'application/json' },
  });
  const groups = await (await authentik('?name=tenant-browser-co')).json();
  assert.equal(groups.results.length, 1);
  const renamed = await authentik(`${groups.results[0].pk}/`, { method: 'PATCH', body: JSON.stringify({ name: 'renamed-by-hand' }) });
  assert.equal(renamed.status, 200);
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: 'Browser Co' }).waitFor();
  await page.getByRole('button', { name: 'Reconcile now' }).click();
  await page.locator('#timeline li.drift_corrected').waitFor();
  await page.locator('tr[data-system="authentik"]', { hasText: 'DriftCorrected' }).waitFor();

  // Pause it and see the plan.
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.getByRole('button', { name: 'Resume' }).waitFor();
  await page.getByRole('button', { name: 'Show plan' }).click();
  await page.locator('#plan', { hasText: 'Computed' }).waitFor();
  await page.locator('[data-plan="authentik"]').waitFor();
  await page.screenshot({ path: path.join(root, 'docs/console-tenant.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'tenant page fits 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Edit: the server's field error shows next to the field.
  await page.locator('#f-domains').fill('not a domain');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#f-domains-error').waitFor({ state: 'visible' });

  // Resume (cleanup needs writes), then delete with the typed confirmation.
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.getByRole('button', { name: 'Pause' }).waitFor();
  const remove = page.getByRole('button', { name: 'Delete tenant' });
  assert.ok(await remove.isDisabled(), 'delete needs the typed slug');
  await page.getByLabel('Type browser-co to confirm').fill('browser-co');
  await remove.click();
  await page.getByRole('heading', { name: 'Tenants' }).waitFor();
  await until('the deleted tenant to leave the list', async () => (await page.locator('#tenants [role="row"][data-slug="browser-co"]').count()) === 0);

  // Sign out: the token is gone.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('token')), null);
  assert.deepEqual(errors, [], 'no script errors');
});
