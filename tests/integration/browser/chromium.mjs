// Headless Debian Chromium through playwright-core, with a fresh profile; shared by the browser scripts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Run `use(page)` in a fresh headless Chromium; print its result as one JSON line; close everything. */
export async function withPage(use, viewport = { width: 1280, height: 900 }) {
  const profile = mkdtempSync(join(tmpdir(), 'vodflow-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
    viewport,
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    // generous: the Prefect UI is a large app, and a loaded 2-core machine renders it slowly
    page.setDefaultTimeout(120000);
    page.setDefaultNavigationTimeout(120000);
    const console_ = [];
    page.on('console', (m) => console_.push(`${m.type()}: ${m.text()}`.slice(0, 300)));
    page.on('pageerror', (e) => console_.push(`pageerror: ${e.message}`.slice(0, 300)));
    const result = await use(page);
    process.stdout.write(JSON.stringify({ ...result, console: console_.slice(-20) }) + '\n');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
