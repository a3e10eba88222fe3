// Shared by the browser tests (and benches/console/): the binary under
// test, free ports, starting a command until its output says it is ready,
// waiting with deadlines, Debian's Chromium through playwright-core
// (installed by scripts/install-browser.sh into .cache/playwright), and a
// whole stack (simulators + serve) with tenants created through the API.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { chromium } = createRequire(path.join(root, '.cache/playwright/'))('playwright-core');
export const binary = process.env.PROVISIONER_BIN || path.join(root, 'target/debug/provisioner');
export const WAIT = 30_000;

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `bin args`; resolves with the child once `ready(stdout)` is true (within `limit` ms). */
export function start(args, env, ready, limit = 60_000, bin = binary) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk) => { err += chunk; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start:\n${out}\n${err}`)), limit);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (ready(out)) { clearTimeout(timer); resolve({ child, out: () => out, err: () => err }); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${args[0]} exited ${code}:\n${out}\n${err}`)); });
  });
}

export async function until(what, check, limit = WAIT) {
  const deadline = Date.now() + limit;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Headless Chromium (root needs --no-sandbox). */
export function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium', args: ['--no-sandbox'] });
}

/**
 * A 1280×900 page of a fresh headless Chromium that `cleanup(fn)` closes
 * (`t.after` in a test), with the default wait and the page's script
 * errors collected: `{page, errors}`.
 */
export async function openPage(cleanup) {
  const browser = await launch();
  cleanup(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, errors };
}

/**
 * `provisioner simulate` and `provisioner serve` (its embedded mongod in a
 * temporary directory) of `bin`, with `env` added to serve's and
 * `simulateArgs` to simulate's command line. `cleanup(fn)`
 * registers what stops them (`t.after` in a test). Resolves once the API is
 * ready with `{api, sims, token, restartServe}`: the API's URL, simulate's
 * `export`s, its platform-admin token (already synced by GET /users/me),
 * and `restartServe(env)`, which starts serve again on the same data with
 * `env` added.
 */
export async function startStack(cleanup, { env = {}, bin = binary, simulateArgs = [] } = {}) {
  const apiPort = await freePort();
  const mongodPort = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dezky-browser-'));
  const listen = `127.0.0.1:${apiPort}`;
  const sims = await start(
    ['simulate', '--authentik-port', '0', '--stalwart-port', '0', '--ocis-port', '0', '--listen-addr', listen, ...simulateArgs],
    {}, (out) => out.includes('export TOKEN='), 60_000, bin);
  cleanup(() => sims.child.kill('SIGTERM'));
  const exports = Object.fromEntries([...sims.out().matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
  const api = `http://${listen}`;
  const token = exports.TOKEN;
  let serve = null;
  const stopServe = () => new Promise((resolve) => {
    if (!serve || serve.exitCode !== null || serve.signalCode !== null) { resolve(); return; }
    serve.once('exit', resolve);
    serve.kill('SIGTERM');
  });
  const startServe = async (more) => {
    const serveEnv = {
      ...exports, LISTEN_ADDR: listen, MONGOD_DATA_DIR: dataDir, MONGOD_PORT: String(mongodPort),
      MONGOD_BIN: process.env.MONGOD_BIN || path.join(root, '.cache/mongod/bin/mongod'),
      RUST_LOG: 'warn', ...more,
    };
    serve = spawn(bin, ['serve'], { env: { ...process.env, ...serveEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
    let serveErr = '';
    serve.stderr.on('data', (chunk) => { serveErr += chunk; });
    await until('the API to be ready', async () => (await fetch(`${api}/readyz`)).ok, 90_000)
      .catch((e) => { throw new Error(`${e.message}\n${serveErr}`); });
  };
  cleanup(async () => {
    await stopServe();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await startServe(env);
  const me = await fetch(`${api}/users/me`, { headers: { Authorization: `Bearer ${token}` } });
  if (!me.ok) throw new Error(`GET /users/me answered ${me.status}`);
  const restartServe = async (more) => {
    await stopServe();
    await startServe(more);
  };
  return { api, sims: exports, token, restartServe };
}

/** Calls the API as `token`; resolves with `{status, body}`. */
export async function call(api, token, method, route, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${api}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** POSTs each of `tenants` with at most `concurrency` requests in flight; throws on any answer but 201. */
export async function createTenants(api, token, tenants, concurrency = 16) {
  let next = 0;
  const worker = async () => {
    while (next < tenants.length) {
      const tenant = tenants[next];
      next += 1;
      const reply = await call(api, token, 'POST', '/tenants', tenant);
      if (reply.status !== 201) throw new Error(`POST /tenants ${tenant.slug}: ${reply.status} ${JSON.stringify(reply.body)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Signs `page` in through the simulated Authentik and waits for the fleet view's heading. */
export async function signIn(page, api) {
  await page.goto(`${api}/console/`);
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.getByRole('heading', { name: 'Tenants' }).waitFor();
}
