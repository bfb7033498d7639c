import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import {
  alignSteps,
  boxStats,
  buildReportData,
  compareLabels,
  escapeHtml,
  jsonForScript,
  renderReport,
  type ReportEvent,
  type ReportOptions,
} from '../../src/report/report.js';

const BASE_MS = Date.parse('2025-03-01T10:00:00.000Z');
const NO_FILTER: ReportOptions = { startTimeMs: null, endTimeMs: null };

function at(seconds: number, event: Record<string, unknown>): ReportEvent {
  return { time: new Date(BASE_MS + seconds * 1000).toISOString(), event };
}

const serverStart = at(0, { type: 'server-start', server_uid: 'abc123' });

/** Serde's descriptor form, as upstream's `hq journal export` writes it. */
function serdeWorker(seconds: number, id: number, cpus: number, extra: object[] = []): ReportEvent {
  return at(seconds, {
    type: 'worker-connected',
    id,
    configuration: {
      hostname: `node${id}`,
      resources: {
        resources: [{ name: 'cpus', kind: { Range: { start: 0, end: cpus - 1 } } }, ...extra],
        coupling: { weights: [] },
      },
    },
  });
}

/** The flat descriptor form of `hq worker info --output-mode json`. */
function flatWorker(seconds: number, id: number, cpus: number): ReportEvent {
  return at(seconds, {
    type: 'worker-connected',
    id,
    configuration: {
      hostname: `node${id}`,
      resources: {
        coupling: { weights: [] },
        resources: [{ kind: 'range', name: 'cpus', start: 0, end: cpus - 1 }],
      },
    },
  });
}

function arrayJob(
  seconds: number,
  job: number,
  variants: object[],
  ranges = [{ start: 0, count: 100, step: 1 }],
): ReportEvent {
  return at(seconds, {
    type: 'job-created',
    job,
    closed_job: true,
    job_desc: { name: 'j', max_fails: null },
    submit_desc: {
      submit_dir: '/tmp',
      stream_path: null,
      task_desc: {
        ids: { ranges },
        resources: { variants },
        time_limit: null,
        priority: 0,
        crash_limit: 5,
      },
    },
  });
}

const cpus = (n: number, policy = 'Compact'): object => ({
  n_nodes: 0,
  resources: [{ resource: 'cpus', policy: { [policy]: n * 10_000 } }],
  min_time: { secs: 0, nanos: 0 },
});

function started(
  seconds: number,
  job: number,
  task: number,
  worker: number | number[],
): ReportEvent {
  return at(seconds, {
    type: 'task-started',
    job,
    task,
    instance: 0,
    ...(Array.isArray(worker) ? { workers: worker } : { worker }),
  });
}

const finished = (s: number, job: number, task: number): ReportEvent =>
  at(s, { type: 'task-finished', job, task });
const failed = (s: number, job: number, task: number): ReportEvent =>
  at(s, { type: 'task-failed', job, task, error: 'boom' });

function assertInvalid(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HqError);
    assert.equal(error.code, 'HQ_INVALID_ARGUMENT');
    assert.equal(error.message, message);
    return true;
  });
}

void describe('buildReportData: input errors', () => {
  void it('rejects an empty journal', () => {
    assertInvalid(() => buildReportData([], NO_FILTER), 'Empty journal');
    assertInvalid(() => renderReport([], NO_FILTER), 'Empty journal');
  });

  void it('rejects a journal that does not start with server-start', () => {
    assertInvalid(
      () => buildReportData([serdeWorker(0, 1, 4)], NO_FILTER),
      'Journal does not start with server start event',
    );
  });

  void it('rejects an allocation that finishes without being queued', () => {
    const events = [
      serverStart,
      at(1, { type: 'autoalloc-allocation-finished', 'queue-id': 1, 'allocation-id': '77' }),
    ];
    assertInvalid(
      () => buildReportData(events, NO_FILTER),
      'Allocation `77` does not exist in the journal',
    );
  });

  void it('rejects an unparsable time and a malformed event', () => {
    assertInvalid(
      () => buildReportData([serverStart, { time: 'yesterday', event: { type: 'x' } }], NO_FILTER),
      'Invalid journal event time: "yesterday"',
    );
    assertInvalid(
      () => buildReportData([serverStart, at(1, { type: 'worker-lost' })], NO_FILTER),
      'Invalid journal event worker-lost: missing "id"',
    );
  });
});

void describe('buildReportData: series', () => {
  const events: ReportEvent[] = [
    serverStart,
    at(0.5, {
      type: 'autoalloc-allocation-queued',
      'queue-id': 1,
      'allocation-id': 'a1',
      'worker-count': 2,
    }),
    serdeWorker(1, 1, 4),
    flatWorker(2, 2, 4),
    at(2, { type: 'autoalloc-allocation-started', 'queue-id': 1, 'allocation-id': 'a1' }),
    arrayJob(3, 1, [cpus(2)]),
    started(3, 1, 0, 1),
    started(3, 1, 1, 1),
    started(3, 1, 2, 2),
    finished(5, 1, 0),
    failed(6, 1, 1),
    finished(7, 1, 2),
    arrayJob(
      8,
      2,
      [{ n_nodes: 2, resources: [], min_time: { secs: 0, nanos: 0 } }],
      [{ start: 0, count: 1, step: 1 }],
    ),
    started(8, 2, 0, [1, 2]),
    finished(10, 2, 0),
    at(11, { type: 'worker-lost', id: 2, reason: 'Stopped' }),
    at(12, { type: 'autoalloc-allocation-finished', 'queue-id': 1, 'allocation-id': 'a1' }),
    at(13, { type: 'server-stop' }),
  ];
  const data = buildReportData(events, NO_FILTER);

  void it('counts queued and running workers as step functions', () => {
    assert.deepEqual(data.queued, {
      name: 'Queued workers',
      group: '',
      x: [0, 0.5, 12],
      y: [0, 2, 0],
    });
    assert.deepEqual(data.running, [
      {
        name: 'Running workers cpus:4',
        group: 'cpus:4',
        x: [1, 1, 2, 11, 13],
        y: [0, 1, 2, 1, 0],
      },
    ]);
  });

  void it('normalizes utilization: a share per single-node task, 1.0 per node of a multi-node one', () => {
    assert.deepEqual(data.utilization, [
      {
        name: 'cpus alloc on cpus:4',
        group: 'cpus:4',
        x: [1, 3, 3, 3, 5, 6, 7, 8, 8, 10, 10],
        y: [0, 0.5, 1, 1.5, 1, 0.5, 0, 1, 2, 1, 0],
      },
    ]);
  });

  void it('groups finished and failed runs by resource request', () => {
    assert.deepEqual(data.classes, [
      { name: 'T1', label: 'cpus: 2 compact', finished: [2, 4], failed: [3] },
      { name: 'T2', label: 'nodes: 2', finished: [2], failed: [] },
    ]);
  });

  void it('draws one timeline row per worker, with lanes for concurrent runs', () => {
    assert.equal(data.timeline.length, 2);
    const [w1, w2] = data.timeline;
    assert.equal(w1?.worker, 1);
    assert.equal(w1?.hostname, 'node1');
    assert.equal(w1?.resources, 'cpus:4');
    assert.equal(w1?.lanes, 2);
    assert.deepEqual(
      w1?.bars.map((b) => [b.job, b.task, b.start, b.end, b.outcome, b.lane, b.nodes]),
      [
        [1, 0, 3, 5, 'finished', 0, 1],
        [1, 1, 3, 6, 'failed', 1, 1],
        [2, 0, 8, 10, 'finished', 0, 2],
      ],
    );
    assert.deepEqual(
      w2?.bars.map((b) => [b.job, b.task, b.outcome, b.lane]),
      [
        [1, 2, 'finished', 0],
        [2, 0, 'finished', 0],
      ],
    );
    assert.equal(data.workerCount, 2);
    assert.equal(data.xMin, 0);
    assert.equal(data.xMax, 13);
    assert.equal(data.filter, null);
  });
});

void describe('buildReportData: requests and task ends', () => {
  void it('uses the variant a task ran with, min_time, `all` and other policies in labels', () => {
    const events = [
      serverStart,
      serdeWorker(0, 1, 8, [{ name: 'gpus', kind: { List: { values: ['0', '1'] } } }]),
      arrayJob(1, 1, [
        { ...cpus(8, 'Tight'), min_time: { secs: 90, nanos: 0 } },
        {
          n_nodes: 0,
          resources: [
            { resource: 'cpus', policy: { ForceCompact: 5_000 } },
            { resource: 'gpus', policy: 'All' },
          ],
        },
      ]),
      started(1, 1, 0, 1),
      at(1, { type: 'task-started', job: 1, task: 1, instance: 2, worker: 1, variant: 1 }),
      finished(2, 1, 0),
      finished(3, 1, 1),
    ];
    const data = buildReportData(events, NO_FILTER);
    assert.deepEqual(
      data.classes.map((c) => [c.name, c.label, c.finished]),
      [
        ['T1', 'cpus: 0.5 compact!, gpus: all', [2]],
        ['T2', 'cpus: 8 tight, min_time: 1m 30s', [1]],
      ],
    );
    assert.deepEqual(
      data.utilization.map((t) => [t.name, t.y]),
      [
        ['cpus alloc on cpus:8, gpus:2', [0, 1, 1.0625, 0.0625, 0]],
        ['gpus alloc on cpus:8, gpus:2', [0, 1, 0]],
      ],
    );
    assert.equal(data.timeline[0]?.bars[1]?.instance, 2);
  });

  void it('puts tasks of a task graph into the class `unknown`', () => {
    const events = [
      serverStart,
      serdeWorker(0, 1, 4),
      at(1, {
        type: 'job-created',
        job: 1,
        closed_job: true,
        job_desc: { name: 'graph', max_fails: null },
        submit_desc: { submit_dir: '/', stream_path: null, task_desc: { n_tasks: 2 } },
      }),
      started(1, 1, 0, 1),
      started(1, 1, 1, 1),
      finished(2, 1, 0),
      failed(3, 1, 1),
    ];
    const data = buildReportData(events, NO_FILTER);
    assert.deepEqual(data.classes, [{ name: 'T1', label: 'unknown', finished: [1], failed: [2] }]);
    assert.deepEqual(data.utilization[0]?.y, [0]);
  });

  void it('ends runs on cancel, abort, worker loss and server stop, without counting them', () => {
    const events = [
      serverStart,
      serdeWorker(0, 1, 4),
      serdeWorker(0, 2, 4),
      arrayJob(0, 1, [cpus(1)]),
      started(1, 1, 0, 1),
      started(1, 1, 1, 1),
      started(1, 1, 2, 2),
      started(1, 1, 3, 2),
      at(2, { type: 'task-canceled', tasks: [{ job_id: 1, job_task_id: 0 }] }),
      at(3, { type: 'task-aborted', tasks: [{ job_id: 1, job_task_id: 1 }] }),
      at(4, { type: 'worker-lost', id: 2, reason: 'ConnectionLost' }),
      started(5, 1, 2, 1),
      at(6, { type: 'server-stop' }),
      at(7, { type: 'server-start', server_uid: 'abc123' }),
    ];
    const data = buildReportData(events, NO_FILTER);
    assert.deepEqual(data.classes, []);
    const outcomes = data.timeline.map((r) => r.bars.map((b) => [b.task, b.outcome, b.end]));
    assert.deepEqual(outcomes, [
      [
        [0, 'canceled', 2],
        [1, 'aborted', 3],
        [2, 'interrupted', 6],
      ],
      [
        [2, 'interrupted', 4],
        [3, 'interrupted', 4],
      ],
    ]);
    assert.deepEqual(data.utilization[0]?.y, [0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25, 0, 0.25, 0]);
  });

  void it('shows runs that have not ended as running until the end of the range', () => {
    const events = [
      serverStart,
      serdeWorker(0, 1, 4),
      arrayJob(0, 1, [cpus(1)]),
      started(1, 1, 0, 1),
      at(9, { type: 'job-open', job_id: 2, name: 'x', max_fails: null }),
    ];
    const bars = buildReportData(events, NO_FILTER).timeline[0]?.bars;
    assert.deepEqual(
      bars?.map((b) => [b.outcome, b.start, b.end]),
      [['running', 1, 9]],
    );
  });
});

void describe('buildReportData: time filtering', () => {
  const events: ReportEvent[] = [
    serverStart,
    serdeWorker(1, 1, 4),
    arrayJob(1, 1, [cpus(1)]),
    started(2, 1, 0, 1),
    finished(3, 1, 0),
    started(4, 1, 1, 1),
    serdeWorker(5, 2, 4),
    finished(6, 1, 1),
    started(7, 1, 2, 2),
    finished(9, 1, 2),
    at(20, { type: 'server-stop' }),
  ];

  void it('folds changes before the start time into the first point', () => {
    const data = buildReportData(events, { startTimeMs: 4500, endTimeMs: null });
    assert.equal(data.filter, 'since 4s 500ms');
    assert.equal(data.xMin, 4.5);
    assert.deepEqual(data.running[0], {
      name: 'Running workers cpus:4',
      group: 'cpus:4',
      x: [4.5, 5, 20],
      y: [1, 2, 0],
    });
    assert.deepEqual(data.utilization[0]?.x, [4.5, 6, 7, 9]);
    assert.deepEqual(data.utilization[0]?.y, [0.25, 0, 0.25, 0]);
    // Task 0 ended before the start time: neither counted nor drawn.
    assert.deepEqual(data.classes[0]?.finished, [2, 2]);
    assert.deepEqual(
      data.timeline.map((r) => r.bars.map((b) => b.task)),
      [[1], [2]],
    );
  });

  void it('stops reading after the end time', () => {
    const data = buildReportData(events, { startTimeMs: null, endTimeMs: 8000 });
    assert.equal(data.filter, 'upto 8s');
    assert.equal(data.xMax, 8);
    assert.deepEqual(data.running[0]?.y, [0, 1, 2]);
    assert.deepEqual(data.classes[0]?.finished, [1, 2]);
    const last = data.timeline[1]?.bars[0];
    assert.deepEqual([last?.task, last?.outcome, last?.end], [2, 'running', 8]);
  });

  void it('says between when both bounds are given', () => {
    const data = buildReportData(events, { startTimeMs: 2000, endTimeMs: 90_000 });
    assert.equal(data.filter, 'between 2s and 1m 30s');
    // The journal ended before the end time: the range ends with it.
    assert.equal(data.xMax, 20);
  });
});

void describe('report helpers', () => {
  void it('aligns step traces on one x axis', () => {
    const aligned = alignSteps(
      [
        { name: 'a', group: '', x: [0, 2, 2, 5], y: [0, 1, 3, 0] },
        { name: 'b', group: '', x: [3, 4], y: [0, 2] },
      ],
      0,
      6,
    );
    assert.deepEqual(aligned.x, [0, 2, 3, 4, 5, 6]);
    assert.deepEqual(aligned.values, [
      [0, 3, 3, 3, 0, 0],
      [null, null, 0, 2, 2, 2],
    ]);
  });

  void it('summarizes box plots with linear quartiles and 1.5 IQR whiskers', () => {
    assert.equal(boxStats([]), null);
    assert.deepEqual(boxStats([5]), {
      n: 1,
      min: 5,
      q1: 5,
      median: 5,
      q3: 5,
      max: 5,
      whiskerLow: 5,
      whiskerHigh: 5,
      outliers: [],
    });
    assert.deepEqual(boxStats([1, 2, 3, 4, 5, 6, 7, 8, 100]), {
      n: 9,
      min: 1,
      q1: 3,
      median: 5,
      q3: 7,
      max: 100,
      whiskerLow: 1,
      whiskerHigh: 8,
      outliers: [100],
    });
  });

  void it('orders labels with numbers compared as numbers', () => {
    const signatures = ['cpus:16', 'cpus:4, gpus:1', 'cpus:4', 'cpus:4, gpus:1, mem:512'];
    assert.deepEqual([...signatures].sort(compareLabels), [
      'cpus:4',
      'cpus:4, gpus:1',
      'cpus:4, gpus:1, mem:512',
      'cpus:16',
    ]);
    const classes = ['nodes: 2', 'cpus: 10 compact', 'cpus: 2 compact', 'cpus: 2 compact!'];
    assert.deepEqual([...classes].sort(compareLabels), [
      'cpus: 2 compact',
      'cpus: 2 compact!',
      'cpus: 10 compact',
      'nodes: 2',
    ]);
  });

  void it('escapes HTML and JSON inside script elements', () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
    assert.equal(jsonForScript({ s: '</script><!--' }), '{"s":"\\u003c/script>\\u003c!--"}');
    assert.deepEqual(JSON.parse(jsonForScript({ s: '</script>\u2028' })), { s: '</script>\u2028' });
  });
});

void describe('renderReport', () => {
  const hostile = '</script><img src=x onerror=alert(1)>';
  const events: ReportEvent[] = [
    serverStart,
    {
      time: new Date(BASE_MS + 1000).toISOString(),
      event: {
        type: 'worker-connected',
        id: 1,
        configuration: {
          hostname: hostile,
          resources: { resources: [{ name: 'cpus', kind: { Range: { start: 0, end: 3 } } }] },
        },
      },
    },
    arrayJob(1, 1, [
      { n_nodes: 0, resources: [{ resource: hostile, policy: { Compact: 10_000 } }] },
    ]),
    started(2, 1, 0, 1),
    finished(3, 1, 0),
  ];

  void it('is one self-contained page with uPlot inside and no external loads', () => {
    const html = renderReport(events, NO_FILTER);
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.match(html, /<title>HQ Journal Report<\/title>/);
    assert.ok(html.includes('/*! https://github.com/leeoniya/uPlot (v1.6.32) */'));
    assert.ok(html.includes('.uplot'));
    assert.doesNotMatch(html, /<(script|link|img|iframe)[^>]*\s(src|href)=/i);
    for (const id of ['globalChart', 'countsChart', 'durationsChart', 'timelineChart']) {
      assert.ok(html.includes(`id="${id}"`), id);
    }
    assert.ok(html.includes('<div class="stat-label">Server started</div>'));
    assert.ok(html.includes('2025-03-01 10:00:00.000 UTC'));
    assert.ok(!html.includes('Time filtering'));
  });

  void it('escapes names from the journal in HTML and in the inlined data', () => {
    const html = renderReport(events, NO_FILTER);
    assert.ok(!html.includes(hostile));
    assert.ok(html.includes('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;: 1 compact'));
    const json = /<script type="application\/json" id="hq-report-data">(.*?)<\/script>/s.exec(html);
    assert.ok(json?.[1] !== undefined);
    const payload = JSON.parse(json[1]) as { timeline: { rows: { label: string }[] } };
    assert.equal(payload.timeline.rows[0]?.label, `1 · ${hostile}`);
    // Only the three script elements of the page close.
    assert.equal(html.match(/<\/script>/g)?.length, 3);
  });

  void it('shows the time filter card', () => {
    const html = renderReport(events, { startTimeMs: 1000, endTimeMs: 2_000 });
    assert.ok(html.includes('<div class="stat-value">between 1s and 2s</div>'));
  });
});
