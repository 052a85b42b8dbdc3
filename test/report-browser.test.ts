// report.html rendered in headless Chromium (Debian's, driven by playwright-core) with the network
// off: every plot draws (non-zero size, marks with non-zero boxes), the hover tooltip answers, the
// page logs no error and tries to load nothing. Skipped with a message when /usr/bin/chromium is
// absent, except under CI=true, where its absence fails.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadResult } from '../reports/load-result.ts';
import { reportHtml } from '../reports/report-html.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const ci = process.env.CI === 'true';
if (!present && !ci) process.stderr.write(`report-browser: skipped — ${CHROMIUM} is not installed (apt-get install chromium); under CI=true this fails\n`);

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-report-browser-'));
let context: BrowserContext | null = null;

describe.skipIf(!present && !ci)('report.html in headless Chromium', () => {
  beforeAll(async () => {
    if (!present) throw new Error(`${CHROMIUM} is missing, and CI=true requires the browser test to run (.ci/run installs chromium)`);
    context = await chromium.launchPersistentContext(join(tmp, 'user-data'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
      viewport: { width: 1400, height: 900 },
    });
    await context.setOffline(true);
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const run of ['android-launch', 'cache-node-loss', 'launch-day']) {
    it(`${run}: every plot draws, offline, with no error and no request`, async () => {
      const file = join(tmp, `${run}.html`);
      writeFileSync(file, reportHtml(loadResult(join('test/fixtures/reports', run)).result));
      const page = await context!.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(`console.${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:')) return route.continue();
        requests.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });

      // Runs in the page (as a string: this project type-checks without the DOM library).
      const plots = await page.evaluate<Array<{ id: string; width: number; height: number; marks: number; drawn: number }>>(`
        [...document.querySelectorAll('svg[data-plot]')].map((svg) => {
          const box = svg.getBoundingClientRect();
          const marks = [...svg.querySelectorAll('.mark')].map((m) => m.getBBox());
          return { id: svg.getAttribute('data-plot'), width: box.width, height: box.height, marks: marks.length, drawn: marks.filter((b) => b.width > 0 || b.height > 0).length };
        })`);
      const expected = (reportHtml(loadResult(join('test/fixtures/reports', run)).result).match(/<svg class="plot/g) ?? []).length;
      expect(plots.length).toBe(expected);
      expect(plots.length).toBeGreaterThan(8);
      for (const p of plots) {
        expect(p.width, `${p.id} width`).toBeGreaterThan(300);
        expect(p.height, `${p.id} height`).toBeGreaterThan(60);
        expect(p.marks, `${p.id} marks`).toBeGreaterThan(0);
        expect(p.drawn, `${p.id} drawn marks`).toBeGreaterThan(0);
      }

      // Hovering a line chart shows the values at that time.
      const svg = page.locator('svg[data-plot="throughput"]');
      await svg.scrollIntoViewIfNeeded();
      const box = (await svg.boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
      const tip = page.locator('.tip');
      await expect.poll(async () => page.evaluate<string>(`getComputedStyle(document.querySelector('.tip')).display`)).toBe('block');
      expect(await tip.textContent()).toMatch(/^at .*s.*all requests[\d,.]+\/s/);

      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await page.close();
    }, 30_000);
  }
});
