// Loads one local HTML file in Debian's chromium (headless) and prints, as JSON on standard
// output: the rendered text (document.body.innerText), the number of <svg> elements, the page's
// scroll width, and every error the page caused: console messages of type error (CSP violations
// are reported there), uncaught exceptions (pageerror) and failed requests.
// Optionally writes a full-page PNG screenshot and an A4 PDF (print styles).
//
//   node check-page.mjs PAGE.html SHOT.png|- OUT.pdf|-
//
// Used by the browser test in tests/api/report.rs. No network: the page must be self-contained.
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [page_file, shot, pdf] = process.argv.slice(2);
if (!page_file) {
  console.error('usage: node check-page.mjs PAGE.html SHOT.png|- OUT.pdf|-');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'overdracht-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(pathToFileURL(page_file).href, { waitUntil: 'load' });
  // Let late console messages (CSP reports are asynchronous) arrive.
  await page.waitForTimeout(300);
  const result = await page.evaluate(() => ({
    text: document.body ? document.body.innerText : '',
    svgs: document.querySelectorAll('svg').length,
    width: document.documentElement.scrollWidth,
    title: document.title,
  }));
  if (shot && shot !== '-') await page.screenshot({ path: shot, fullPage: true });
  if (pdf && pdf !== '-') await page.pdf({ path: pdf, format: 'A4', printBackground: true, preferCSSPageSize: true });
  process.stdout.write(JSON.stringify({ ...result, errors }) + '\n');
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
