import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  MAX_RANGE_MS,
  MIN_RANGE_MS,
  bounds,
  earlier,
  formatSpan,
  later,
  liveRange,
  zoomIn,
  zoomOut,
} from '../../src/dashboard/time-range.js';
import {
  box,
  fit,
  progressBar,
  sparkline,
  table,
  usageBar,
  visibleWidth,
} from '../../src/dashboard/tui/widgets.js';
import { initialState, key, render } from '../../src/dashboard/tui/app.js';
import { DashboardModel } from '../../src/dashboard/model.js';
import type { TaskDesc, WorkerConfiguration } from '../../src/transport/messages.js';
import type { HwState } from '../../src/worker/hw-monitor.js';
import { arrayJob, started } from './event-fixtures.js';

const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

void describe('dashboard widgets', () => {
  void it('measure and fit text with colours and wide characters', () => {
    assert.equal(visibleWidth('\x1b[31mab\x1b[0m界'), 4);
    assert.equal(fit('abcdef', 3), 'abc');
    assert.equal(fit('ab', 4), 'ab  ');
    const cut = fit('\x1b[31mabcdef\x1b[0m', 3);
    assert.equal(plain(cut), 'abc');
    assert.ok(cut.endsWith('\x1b[0m'), 'a cut coloured text is reset');
    assert.equal(fit('界界', 3), '界 ');
  });

  void it('draws usage bars coloured by load, sparklines, progress bars, boxes and tables', () => {
    assert.equal(plain(usageBar(0.5, 16)), '█████░░░░░ (50%)');
    assert.match(usageBar(0.5, 16), /\x1b\[32m/);
    assert.match(usageBar(0.9, 16), /\x1b\[31m/);
    assert.equal(visibleWidth(usageBar(2, 16)), 16);
    assert.equal(sparkline([0, 1, 2, 4]), '▁▃▅█');
    assert.equal(sparkline([0, 0]), '▁▁');
    assert.equal(
      plain(progressBar({ finished: 5, failed: 2, canceled: 0, aborted: 0, running: 1 }, 10, 10)),
      '███████▒░░',
    );
    assert.deepEqual(box('T', ['x'], 6, 3), ['┌ T ─┐', '│x   │', '└────┘']);
    const rows = Array.from({ length: 10 }, (_, i) => [String(i)]);
    const t = table([{ title: 'N', width: 2 }], rows, 4, 7);
    assert.deepEqual(t.map(plain), ['N ', '5 ', '6 ', '7 ']);
    assert.match(t[3]!, /\x1b\[7m/);
  });
});

void describe('dashboard time window', () => {
  const now = 10_000_000;
  void it('moves, zooms within 60 s and 7 days, and never passes now', () => {
    const live = liveRange(600_000);
    assert.deepEqual(bounds(live, now), [now - 600_000, now]);
    const e = earlier(live, now);
    assert.deepEqual(bounds(e, now), [now - 750_000, now - 150_000]);
    assert.deepEqual(bounds(later(e, now), now), [now - 600_000, now]);
    assert.deepEqual(later(live, now), live);
    assert.deepEqual(bounds(later(later(e, now), now), now), [now - 600_000, now]);
    let z = live;
    for (let i = 0; i < 20; i++) {
      z = zoomIn(z, now);
    }
    assert.equal(bounds(z, now)[1] - bounds(z, now)[0], MIN_RANGE_MS);
    for (let i = 0; i < 40; i++) {
      z = zoomOut(z, now);
    }
    assert.equal(bounds(z, now)[1] - bounds(z, now)[0], MAX_RANGE_MS);
    assert.deepEqual([59_000, 600_000, 5_400_000, 90_000_000].map(formatSpan), [
      '59s',
      '10m',
      '1h 30m',
      '1d 1h',
    ]);
  });
});

/** A model with worker 1 ('alpha') connected at 1000. */
function withWorker(configuration: WorkerConfiguration): DashboardModel {
  const model = new DashboardModel();
  model.apply(1000, {
    type: 'worker-connected',
    id: 1,
    configuration: { ...configuration, hostname: 'alpha' },
  });
  return model;
}

void describe('dashboard screens', () => {
  void it('render a frame of the asked size whose cost does not depend on the job size', () => {
    const model = withWorker({
      listenAddress: 'alpha:1',
      workDir: '/w',
      heartbeatIntervalMs: 8000,
    } as WorkerConfiguration);
    const desc = { program: { args: ['true'], cwd: '/tmp' } } as TaskDesc;
    model.apply(1000, arrayJob(1, 0, 1_000_000, desc));
    for (let i = 0; i < 100_000; i++) {
      model.apply(2000 + i, started(1, i));
      model.apply(2001 + i, { type: 'task-finished', jobId: 1, taskId: i });
    }
    const state = initialState('replay', { kind: 'fixed', start: 0, end: 200_000 });
    const frame = render(model, state, 200_000, 120, 40);
    assert.equal(frame.length, 40);
    assert.ok(frame.every((l) => visibleWidth(l) === 120));
    const text = frame.map(plain).join('\n');
    assert.match(text, /100000\/1000000/);
    assert.match(text, /Waiting: 900000/);
    assert.equal(key(state, 'w', 200_000), true);
    assert.match(render(model, state, 200_000, 120, 40).map(plain).join('\n'), /alpha\s+online/);
    assert.equal(key(state, 'i', 200_000), true);
    assert.match(render(model, state, 200_000, 120, 40).map(plain).join('\n'), /Worker 1 /);
    assert.equal(key(state, 'q', 200_000), false);
  });

  void it('cycle the worker detail through its CPU views with c', () => {
    const model = withWorker({
      resources: { resources: [{ name: 'cpus', kind: 'range', start: 0, end: 1 }] },
    } as unknown as WorkerConfiguration);
    model.apply(1000, arrayJob(1, 0, 1, { program: { args: ['x'], cwd: '/' } } as TaskDesc));
    model.apply(1100, started(1, 0));
    const hw = {
      cpu_usage: { cpu_per_core_percent_usage: [90, 20, 30, 40] },
      memory_usage: { total: 4 * 1024 ** 3, free: 3 * 1024 ** 3 },
      nvidia_gpus: { gpus: [{ id: '0000:01:00.0', processor_usage: 50, mem_usage: 10 }] },
      amd_gpus: null,
    } as HwState;
    model.apply(1200, { type: 'worker-overview', id: 1, hwState: hw, tasks: [[1, 0, [0]]] });
    const state = initialState('replay', { kind: 'fixed', start: 0, end: 2000 });
    key(state, 'w', 2000);
    render(model, state, 2000, 120, 40);
    key(state, 'i', 2000);
    const titles: string[] = [];
    for (let i = 0; i < 4; i++) {
      const text = render(model, state, 2000, 120, 40).map(plain).join('\n');
      titles.push(
        /(\w+(?: \w+)?) Utilization \((\d+) CPUs\), Avg CPU = (\d+)%/
          .exec(text)!
          .slice(1)
          .join(' '),
      );
      key(state, 'c', 2000);
    }
    assert.deepEqual(titles, [
      'Worker Managed 2 55',
      'Worker Assigned 1 90',
      'Global 4 45',
      'Worker Managed 2 55',
    ]);
    const text = render(model, state, 2000, 120, 40).map(plain).join('\n');
    assert.match(text, /Mem = 25% \(1\.0 GiB\/4\.0 GiB\)/);
    assert.match(text, /GPU avg .* 50%/, 'a busy GPU gets its history line');
    assert.match(text, /1@0 .* 0\s/, 'the task lists the CPU it holds');
  });
});
