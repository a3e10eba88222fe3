// `provisioner demo` (what `make demo` runs) prints the console's URL, and
// opening it signs the demo admin in without a click.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort, launch, start, WAIT } from './support.mjs';

test('the demo prints the console URL, which opens signed in as the demo admin', { timeout: 240_000 }, async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dezky-demo-browser-'));
  const listen = `127.0.0.1:${await freePort()}`;
  const demo = await start(
    ['demo', '--data-dir', path.join(dataDir, 'mongo'), '--mongod-port', String(await freePort())],
    { LISTEN_ADDR: listen },
    (out) => /^Console: \S+/m.test(out) && out.includes('keeps running'),
    180_000,
  );
  t.after(() => new Promise((resolve) => {
    demo.child.once('exit', () => { rmSync(dataDir, { recursive: true, force: true }); resolve(); });
    demo.child.kill('SIGTERM');
  }));
  const url = demo.out().match(/^Console: (\S+)/m)[1];
  assert.equal(url, `http://${listen}/console/`);

  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(WAIT);
  await page.goto(url);
  await page.getByRole('heading', { name: 'Tenants' }).waitFor();
  assert.equal(await page.locator('#who').textContent(), 'Demo Admin (platform admin)');
  await page.locator('#tenants [role="row"][data-slug="acme"]').waitFor();
});
