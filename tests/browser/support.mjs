// Shared by the browser tests: the binary under test, free ports, starting
// a command until its output says it is ready, waiting with deadlines, and
// Debian's Chromium through playwright-core (installed by
// scripts/install-browser.sh into .cache/playwright).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
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

/** Starts `args`; resolves with the child once `ready(stdout)` is true (within `limit` ms). */
export function start(args, env, ready, limit = 60_000) {
  const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk) => { err += chunk; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start:\n${out}\n${err}`)), 60_000);
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
