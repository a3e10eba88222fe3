// Sessions that last, in a real headless Chromium: the simulated Authentik
// issues access tokens that live 4 s (`provisioner simulate
// --token-lifetime 4s`; Authentik's default is 5 minutes) and rotating
// refresh tokens for `offline_access`. After the access token expired, the
// console still works without sending the browser back to the issuer: the
// next API call and the live watch renew the token with the refresh token
// (rotated), in the same document.
//
// Run: ./scripts/browser-test.sh (or `node --test tests/browser/session.spec.mjs`).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { openPage, signIn, startStack } from './support.mjs';

const LIFETIME_S = 4;

test('the console renews an expired access token with its refresh token, without a new sign-in', { timeout: 120_000 }, async (t) => {
  const { api } = await startStack((fn) => t.after(fn), { simulateArgs: ['--token-lifetime', `${LIFETIME_S}s`] });
  const { page, errors } = await openPage((fn) => t.after(fn));

  await signIn(page, api);
  const tokens = () => page.evaluate(() => ({
    token: sessionStorage.getItem('token'),
    refreshToken: sessionStorage.getItem('refreshToken'),
    expiresAt: Number(sessionStorage.getItem('expiresAt')),
  }));
  const first = await tokens();
  assert.ok(first.refreshToken, 'offline_access brought a refresh token, kept in sessionStorage');
  assert.ok(first.expiresAt - Date.now() <= LIFETIME_S * 1000, 'the short lifetime');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  await page.locator('#tenants [role="row"][data-slug="dezky"]').waitFor();
  await page.evaluate(() => { window.__sameDocument = true; });

  // Let the access token expire (its expiry is known: wait exactly past it).
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, first.expiresAt - Date.now()) + 100));

  // An API call after expiry: create a tenant from the form.
  await page.getByRole('link', { name: 'New tenant' }).first().click();
  await page.getByLabel('Slug').fill('after-expiry');
  await page.getByLabel('Name').fill('After Expiry');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.getByRole('heading', { name: 'After Expiry' }).waitFor();
  const second = await tokens();
  assert.notEqual(second.token, first.token, 'a new access token');
  assert.notEqual(second.refreshToken, first.refreshToken, 'the rotated refresh token is kept');
  assert.ok(second.expiresAt > first.expiresAt);

  // The live watch keeps following with renewed tokens: the tenant goes active on screen.
  await page.locator('#phase .badge.active').waitFor();
  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  await page.locator('#tenants [role="row"][data-slug="after-expiry"]').waitFor();
  assert.ok(await page.evaluate(() => window.__sameDocument), 'no reload, no redirect to the issuer');
  assert.equal(await page.locator('#sign-out').isVisible(), true, 'still signed in');
  assert.deepEqual(errors, []);
});
