/**
 * `hq dashboard web` against a real server: the token and cookie gate, the Host check, and the
 * page in headless Chromium (Debian's, driven by playwright-core): workers and jobs shown, a new
 * job appearing live, the task timeline drawn, no console error. Also a journal replay with no
 * server, a refused non-loopback bind, and the end of the process when its server stops.
 * Skips the browser part where /usr/bin/chromium is missing (.ci/run installs it).
 *
 * `HQ_UPDATE_SCREENSHOT=1` also saves the page as docs/dashboard-web.png.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

import { NO_OUTPUT, ROOT, waitFor, withEnv, type HqEnv, type ManagedProcess } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

async function startWeb(
  env: HqEnv,
  args: string[] = [],
): Promise<{ web: ManagedProcess; url: string; port: number }> {
  const web = env.spawnHq('web', ['--server-dir', env.serverDir, 'dashboard', 'web', ...args]);
  const url = await waitFor(
    () => {
      const out = existsSync(web.stdoutPath) ? readFileSync(web.stdoutPath, 'utf8') : '';
      return /(http:\/\/\S+\?token=\S+)/.exec(out)?.[1];
    },
    { message: 'the dashboard URL' },
  );
  return { web, url, port: Number(new URL(url).port) };
}

void describe('hq dashboard web', () => {
  void it('lets in only the token holder and only under its own host name', () =>
    withEnv(async (env) => {
      await env.startServer();
      const { url, port } = await startWeb(env);
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await get(`${base}/`)).status, 401);
      assert.equal((await get(`${base}/api/snapshot`)).status, 401);
      assert.equal((await get(`${base}/?token=wrong`)).status, 401);
      const redeemed = await get(url);
      assert.equal(redeemed.status, 303);
      const cookie = /hqdash=[^;]+/.exec(String(redeemed.headers['set-cookie']))?.[0];
      assert.ok(cookie, 'a session cookie');
      assert.match(String(redeemed.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
      assert.equal((await get(`${base}/api/snapshot`, { Cookie: cookie })).status, 200);
      assert.equal((await get(`${base}/api/snapshot`, { Cookie: 'hqdash=forged' })).status, 401);
      const rebound = await get(`${base}/`, { Cookie: cookie, Host: `attacker.example:${port}` });
      assert.equal(rebound.status, 403);
      const page = await get(`${base}/`, { Cookie: cookie });
      assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    }));

  void it('shows workers and jobs in a browser and updates them live', async (t: TestContext) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`needs ${CHROMIUM} (apt-get install chromium)`);
      return;
    }
    await withEnv(async (env) => {
      await env.startServer(['--journal', env.path('journal')]);
      await env.startWorker({ cpus: 2, hostname: 'alpha' });
      await env.startWorker({ cpus: 1, hostname: 'beta' });
      await env.command([
        'submit',
        '--name',
        'first',
        '--array',
        '1-10',
        ...NO_OUTPUT,
        '--',
        'true',
      ]);
      await env.waitForJobState(1, 'FINISHED');
      const { web, url } = await startWeb(env);
      let browser: Browser | null = null;
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          timeout: 20_000,
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-dev-shm-usage',
          ],
        });
        const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('console', (m) => {
          if (m.type() === 'error') {
            errors.push(m.text());
          }
        });
        await page.goto(url);
        assert.equal(new URL(page.url()).search, '', 'the token is taken out of the address');
        await page.waitForSelector('tr[data-worker="2"] >> text=online', { timeout: 20_000 });
        await page.waitForSelector('tr[data-job="1"] >> text=first', { timeout: 20_000 });
        assert.equal(await page.textContent('[data-count="finished"]'), 'finished: 10');
        await waitFor(async () => Number(await page.getAttribute('#timeline', 'data-runs')) >= 10, {
          timeoutMs: 20_000,
          message: 'the timeline to draw 10 runs',
        });
        // Overviews arrive while the page watches: the heatmap fills in. (Polled from here: the
        // page's CSP forbids the eval that a string predicate would need.)
        await waitFor(async () => Number(await page.getAttribute('#heatmap', 'data-cells')) >= 2, {
          timeoutMs: 20_000,
          message: 'the heatmap to fill in',
        });
        // Live: a job submitted now shows up without a reload.
        await env.command([
          'submit',
          '--name',
          'second',
          '--array',
          '1-5',
          ...NO_OUTPUT,
          '--',
          'true',
        ]);
        await page.waitForSelector('tr[data-job="2"] >> text=second', { timeout: 20_000 });
        await waitFor(
          async () => (await page.textContent('[data-count="finished"]')) === 'finished: 15',
          {
            timeoutMs: 20_000,
            message: '15 finished tasks',
          },
        );
        // A running task: the next overview names its CPU, and the timeline gives it a lane.
        await env.command(['submit', '--name', 'long', ...NO_OUTPUT, '--', 'sleep', '60']);
        await waitFor(
          async () => Number(await page.getAttribute('#timeline', 'data-cpu-lanes')) >= 1,
          { timeoutMs: 20_000, message: 'a CPU lane in the timeline' },
        );
        // A worker's row opens its per-core load over time.
        await page.click('tr[data-worker="1"]');
        await waitFor(
          async () =>
            (await page.getAttribute('#coreHeatmap', 'data-worker')) === '1' &&
            Number(await page.getAttribute('#coreHeatmap', 'data-cells')) >= 1,
          { timeoutMs: 20_000, message: "worker 1's per-core heatmap" },
        );
        await page.click('#zoomIn');
        await page.waitForSelector('tr[data-job="2"]', { timeout: 20_000 });
        if (process.env['HQ_UPDATE_SCREENSHOT'] === '1') {
          await page.screenshot({ path: join(ROOT, 'docs', 'dashboard-web.png'), fullPage: true });
        }
        assert.deepEqual(errors, []);
        const fresh = await browser.newPage();
        const denied = await fresh.goto(new URL('/', url).href);
        assert.equal(denied?.status(), 401, 'a browser without the token gets nothing');
      } finally {
        await browser?.close();
      }
      // The server's stop ends the dashboard.
      await env.command(['server', 'stop']);
      const status = await web.waitForExit();
      assert.equal(status.code, 0);
    });
  });

  void it('replays a journal with no server, and refuses a non-loopback bind', () =>
    withEnv(async (env) => {
      const journal = env.path('journal');
      await env.startServer(['--journal', journal]);
      await env.startWorker({ cpus: 1 });
      await env.command(['submit', '--name', 'kept', ...NO_OUTPUT, '--', 'true']);
      await env.waitForJobState(1, 'FINISHED');
      await env.command(['server', 'stop']);
      await env.server!.waitForExit();
      const { url, port } = await startWeb(env, ['--replay', journal]);
      const redeemed = await get(url);
      const cookie = /hqdash=[^;]+/.exec(String(redeemed.headers['set-cookie']))![0];
      const snap = JSON.parse(
        (await get(`http://127.0.0.1:${port}/api/snapshot`, { Cookie: cookie })).body,
      ) as { mode: string; jobs: { name: string; counts: { finished: number } }[] };
      assert.equal(snap.mode, 'replay');
      assert.deepEqual(
        snap.jobs.map((j) => [j.name, j.counts.finished]),
        [['kept', 1]],
      );
      const remote = await env.command(['dashboard', 'web', '--bind', '0.0.0.0:0'], {
        expectFail: true,
        serverDir: null,
      });
      assert.match(remote.stderr, /not a loopback address.*--allow-remote/);
    }));
});
