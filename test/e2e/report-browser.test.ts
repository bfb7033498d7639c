/**
 * The `hq journal report` page in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) opens a report written from a synthetic but realistic journal, with every
 * network request refused, and must draw all four charts without a single error. Skipped where
 * /usr/bin/chromium is missing (.ci/run installs it).
 *
 * `HQ_UPDATE_SCREENSHOT=1` also saves the page as docs/journal-report.png.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

import { renderReport, type ReportEvent } from '../../src/report/report.js';
import { withEnv } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 20_000;
const BASE_MS = Date.parse('2025-03-01T09:30:00.000Z');
const CHART_IDS = ['globalChart', 'countsChart', 'durationsChart', 'timelineChart'] as const;

/**
 * A server, an allocation whose two 4-cpu workers connect, a 20-task array job (1 cpu each,
 * four of them fail), a 2-node task, then the workers stop and the server with them.
 */
function syntheticJournal(): ReportEvent[] {
  const timed: [number, Record<string, unknown>][] = [];
  const add = (seconds: number, event: Record<string, unknown>): void => {
    timed.push([seconds, event]);
  };
  add(0, { type: 'server-start', server_uid: 'R3p0rT' });
  add(0.4, { type: 'autoalloc-queue-created', 'queue-id': 1, params: { manager: 'Slurm' } });
  add(0.8, {
    type: 'autoalloc-allocation-queued',
    'queue-id': 1,
    'allocation-id': '4711',
    'worker-count': 2,
  });
  add(2, { type: 'autoalloc-allocation-started', 'queue-id': 1, 'allocation-id': '4711' });
  for (const id of [1, 2]) {
    add(2 + id * 0.3, {
      type: 'worker-connected',
      id,
      configuration: {
        hostname: `cn${id}`,
        resources: {
          coupling: { weights: [] },
          resources: [{ kind: 'range', name: 'cpus', start: 0, end: 3 }],
        },
      },
    });
  }
  const requests = (variant: object): object => ({ variants: [variant] });
  add(3, {
    type: 'job-created',
    job: 1,
    closed_job: true,
    job_desc: { name: 'array', max_fails: null },
    submit_desc: {
      submit_dir: '/home/user',
      stream_path: null,
      task_desc: {
        ids: { ranges: [{ start: 1, count: 20, step: 1 }] },
        resources: requests({
          n_nodes: 0,
          resources: [{ resource: 'cpus', policy: { Compact: 10_000 } }],
          min_time: { secs: 0, nanos: 0 },
        }),
        time_limit: null,
        priority: 0,
        crash_limit: 5,
      },
    },
  });
  // Four slots per worker; each task takes the slot that frees first.
  const slots = [1, 1, 1, 1, 2, 2, 2, 2].map((worker) => ({ worker, free: 3.1 }));
  const failing = new Set([4, 9, 13, 18]);
  for (let task = 1; task <= 20; task++) {
    slots.sort((a, b) => a.free - b.free || a.worker - b.worker);
    const slot = slots[0]!;
    const start = slot.free;
    const end = start + 1.5 + ((task * 7) % 5) * 0.9 + (failing.has(task) ? -0.8 : 0);
    slot.free = end + 0.05;
    add(start, { type: 'task-started', job: 1, task, instance: 0, worker: slot.worker });
    add(
      end,
      failing.has(task)
        ? { type: 'task-failed', job: 1, task, error: 'Program terminated with exit code 1' }
        : { type: 'task-finished', job: 1, task },
    );
  }
  const lastArrayEnd = Math.max(...slots.map((s) => s.free));
  add(lastArrayEnd, { type: 'job-completed', job: 1 });
  add(lastArrayEnd + 0.2, {
    type: 'job-created',
    job: 2,
    closed_job: true,
    job_desc: { name: 'mpi', max_fails: null },
    submit_desc: {
      submit_dir: '/home/user',
      stream_path: null,
      task_desc: {
        ids: { ranges: [{ start: 0, count: 1, step: 1 }] },
        resources: requests({ n_nodes: 2, resources: [], min_time: { secs: 0, nanos: 0 } }),
        time_limit: null,
        priority: 0,
        crash_limit: 5,
      },
    },
  });
  add(lastArrayEnd + 0.3, { type: 'task-started', job: 2, task: 0, instance: 0, workers: [1, 2] });
  add(lastArrayEnd + 4.3, { type: 'task-finished', job: 2, task: 0 });
  add(lastArrayEnd + 4.3, { type: 'job-completed', job: 2 });
  add(lastArrayEnd + 6, { type: 'worker-lost', id: 1, reason: 'IdleTimeout' });
  add(lastArrayEnd + 6.2, { type: 'worker-lost', id: 2, reason: 'IdleTimeout' });
  add(lastArrayEnd + 6.5, {
    type: 'autoalloc-allocation-finished',
    'queue-id': 1,
    'allocation-id': '4711',
  });
  add(lastArrayEnd + 8, { type: 'server-stop' });
  return timed
    .map(([seconds, event], order) => ({ seconds, event, order }))
    .sort((a, b) => a.seconds - b.seconds || a.order - b.order)
    .map(({ seconds, event }) => ({
      time: new Date(BASE_MS + Math.round(seconds * 1000)).toISOString(),
      event,
    }));
}

/**
 * Counts the painted pixels of each chart's canvas, and those of the finished, failed and first
 * series colors. Page-side code kept as text: tsx would wrap a function's inner helpers in its
 * `__name`, which the page does not have.
 */
const SCAN_CANVASES = String.raw`(ids) => {
  const near = (d, i, rgb) =>
    Math.abs(d[i] - rgb[0]) < 12 && Math.abs(d[i + 1] - rgb[1]) < 12 &&
    Math.abs(d[i + 2] - rgb[2]) < 12 && d[i + 3] > 200;
  return ids.map((id) => {
    const canvas = document.querySelector('#' + id + ' canvas');
    if (canvas === null) return null;
    const { width, height } = canvas;
    const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    const rect = canvas.getBoundingClientRect();
    const scan = { id, width, height, painted: 0, finished: 0, failed: 0, series: 0, finishedAt: null };
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] > 0) scan.painted++;
      if (near(pixels, i, [0x2f, 0x9e, 0x44])) {
        scan.finished++;
        if (scan.finishedAt === null) {
          const p = i / 4;
          scan.finishedAt = {
            x: rect.left + window.scrollX + ((p % width) * rect.width) / width,
            y: rect.top + window.scrollY + (Math.floor(p / width) * rect.height) / height,
          };
        }
      }
      if (near(pixels, i, [0xe0, 0x31, 0x31])) scan.failed++;
      if (near(pixels, i, [0x1f, 0x77, 0xb4])) scan.series++;
    }
    return scan;
  });
}`;

interface CanvasScan {
  id: string;
  width: number;
  height: number;
  painted: number;
  finished: number;
  failed: number;
  series: number;
  /** A pixel of a finished bar, in CSS pixels from the page's top left corner. */
  finishedAt: { x: number; y: number } | null;
}

interface OpenedReport {
  page: Page;
  errors: string[];
  blocked: string[];
}

/** Opens `file` in headless Chromium with every non-file request refused. */
async function withReportPage(
  file: string,
  fn: (opened: OpenedReport) => Promise<void>,
): Promise<void> {
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: WAIT_MS,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-dev-shm-usage',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') {
        errors.push(`console: ${message.text()}`);
      }
    });
    page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
    page.on('requestfailed', (request) => {
      if (!request.url().startsWith('file:')) {
        blocked.push(request.url());
      }
    });
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) {
        await route.continue();
      } else {
        blocked.push(url);
        await route.abort();
      }
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: WAIT_MS });
    // The page script marks the body once all four charts exist.
    await page.waitForSelector('body[data-charts="4"]', { timeout: WAIT_MS });
    assert.equal(await page.title(), 'HQ Journal Report');
    await fn({ page, errors, blocked });
  } finally {
    await browser?.close();
  }
}

async function scanCharts(page: Page): Promise<CanvasScan[]> {
  const scans = await page.evaluate<(CanvasScan | null)[]>(
    `(${SCAN_CANVASES})(${JSON.stringify(CHART_IDS)})`,
  );
  return CHART_IDS.map((id, index) => {
    const scan = scans[index];
    assert.ok(scan, `#${id} has a canvas`);
    assert.ok(scan.width > 300 && scan.height > 100, `#${id} canvas size`);
    assert.ok(scan.painted > 2000, `#${id} is not blank (${scan.painted} pixels)`);
    return scan;
  });
}

void describe('journal report in headless Chromium', () => {
  void it('draws every chart offline, without errors', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is missing (apt-get install chromium fonts-dejavu-core)`);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'hq-report-'));
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(syntheticJournal(), { startTimeMs: null, endTimeMs: null }));
    try {
      await withReportPage(file, async ({ page, errors, blocked }) => {
        const [global, counts, durations, timeline] = await scanCharts(page);
        assert.ok((global?.series ?? 0) > 200, 'the running-workers line is drawn');
        for (const scan of [counts, durations, timeline]) {
          assert.ok((scan?.finished ?? 0) > 100, `${scan?.id}: finished drawn`);
          assert.ok((scan?.failed ?? 0) > 100, `${scan?.id}: failed drawn`);
        }

        // Hovering a finished bar of the timeline names its job and task.
        const target = timeline?.finishedAt;
        assert.ok(target, 'a finished bar on the timeline');
        await page.locator('#timelineChart').scrollIntoViewIfNeeded({ timeout: WAIT_MS });
        const scrollY = await page.evaluate<number>('window.scrollY');
        await page.mouse.move(target.x + 2, target.y + 3 - scrollY);
        const tip = page.locator('#timelineChart .hq-tooltip');
        await tip.waitFor({ state: 'visible', timeout: WAIT_MS });
        assert.match(await tip.innerText(), /job 1, task \d+[\s\S]*finished/);
        await page.mouse.move(0, 0);

        // Dragging across the timeline zooms in (wider bars, more green); a double click undoes it.
        const over = await page.locator('#timelineChart .u-over').boundingBox();
        assert.ok(over, 'the timeline has a cursor overlay');
        const midY = over.y + over.height / 2;
        await page.mouse.move(over.x + over.width * 0.1, midY);
        await page.mouse.down();
        await page.mouse.move(over.x + over.width * 0.45, midY, { steps: 5 });
        await page.mouse.up();
        // uPlot redraws on its own schedule: poll the canvas, within a bound.
        const timelineFinished = `(${SCAN_CANVASES})(['timelineChart'])[0].finished`;
        const before = timeline?.finished ?? 0;
        await page.waitForFunction(`${timelineFinished} > ${before * 1.5}`, null, {
          timeout: WAIT_MS,
        });
        await page.mouse.dblclick(over.x + over.width / 2, midY);
        await page.waitForFunction(`${timelineFinished} === ${before}`, null, {
          timeout: WAIT_MS,
        });

        assert.deepEqual(blocked, [], 'no network request was attempted');
        assert.deepEqual(errors, [], 'no console or page errors');

        if (process.env.HQ_UPDATE_SCREENSHOT === '1') {
          await page.mouse.move(0, 0);
          await page.screenshot({ path: 'docs/journal-report.png', fullPage: true });
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('draws the report `hq journal report` writes from a real journal', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is missing (apt-get install chromium fonts-dejavu-core)`);
      return;
    }
    await withEnv(async (env) => {
      const journal = env.path('journal');
      await env.startServer(['--journal', journal]);
      await env.startWorker({ cpus: 4 });
      await env.startWorker({ cpus: 4 });
      await env.command([
        'submit',
        '--array',
        '0-15',
        '--',
        'sh',
        '-c',
        'sleep 0.2; exit $((HQ_TASK_ID % 5 == 0))',
      ]);
      await env.command(['submit', '--nodes', '2', '--', 'sleep', '0.3']);
      await env.waitForJobState(1, 'FAILED');
      await env.waitForJobState(2, 'FINISHED');
      await env.command(['journal', 'flush']);
      const file = env.path('report.html');
      await env.command(['journal', 'report', journal, file], { serverDir: null });
      await withReportPage(file, async ({ page, errors, blocked }) => {
        const [, counts, , timeline] = await scanCharts(page);
        assert.ok((counts?.finished ?? 0) > 100 && (counts?.failed ?? 0) > 100, 'task counts');
        assert.ok((timeline?.finished ?? 0) > 100, 'the timeline has finished runs');
        const text = await page.locator('body').innerText();
        assert.match(text, /nodes: 2/);
        assert.deepEqual(blocked, [], 'no network request was attempted');
        assert.deepEqual(errors, [], 'no console or page errors');
      });
    });
  });
});
