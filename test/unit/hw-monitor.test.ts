import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { configureLogging } from '../../src/common/log.js';
import {
  HwMonitor,
  cpuUsagePercent,
  parseMeminfo,
  parseNetDev,
  parseNvidiaSmi,
  parseProcStat,
  parseRocmSmi,
} from '../../src/worker/hw-monitor.js';
import type { CpuTimes } from '../../src/worker/hw-monitor.js';

function times(partial: Partial<CpuTimes>): CpuTimes {
  return {
    user: 0,
    nice: 0,
    system: 0,
    idle: 0,
    iowait: 0,
    irq: 0,
    softirq: 0,
    steal: 0,
    guest: 0,
    guestNice: 0,
    ...partial,
  };
}

void describe('parseProcStat', () => {
  void it('reads only the per-core lines', () => {
    const text = [
      'cpu  300 10 200 9000 40 5 6 7 0 0',
      'cpu0 100 4 80 4500 20 2 3 4 1 0',
      'cpu1 200 6 120 4500 20 3 3 3 0 2',
      'intr 12345 0 0',
      'ctxt 999',
      'cpufreq_not_a_core 1 2 3',
    ].join('\n');
    assert.deepEqual(parseProcStat(text), [
      times({
        user: 100,
        nice: 4,
        system: 80,
        idle: 4500,
        iowait: 20,
        irq: 2,
        softirq: 3,
        steal: 4,
        guest: 1,
      }),
      times({
        user: 200,
        nice: 6,
        system: 120,
        idle: 4500,
        iowait: 20,
        irq: 3,
        softirq: 3,
        steal: 3,
        guestNice: 2,
      }),
    ]);
  });

  void it('fills missing trailing columns of old kernels with zeros', () => {
    assert.deepEqual(parseProcStat('cpu0 1 2 3 4\n'), [
      times({ user: 1, nice: 2, system: 3, idle: 4 }),
    ]);
  });

  void it('gives no cores for empty input', () => {
    assert.deepEqual(parseProcStat(''), []);
  });
});

void describe('cpuUsagePercent', () => {
  void it('counts user, nice, system, irq, softirq and steal as busy', () => {
    const prev = [times({ user: 10, idle: 10 })];
    const next = [times({ user: 20, nice: 5, system: 5, irq: 2, softirq: 2, steal: 1, idle: 85 })];
    // busy 25 of 100 elapsed jiffies
    assert.deepEqual(cpuUsagePercent(prev, next), [25]);
  });

  void it('treats iowait as idle', () => {
    const next = [times({ user: 30, iowait: 70 })];
    assert.deepEqual(cpuUsagePercent([times({})], next), [30]);
  });

  void it('does not count guest time twice', () => {
    // The kernel already includes guest in user: 40 jiffies busy, 10 of them guest.
    const next = [times({ user: 40, guest: 10, idle: 60 })];
    assert.deepEqual(cpuUsagePercent([times({})], next), [40]);
  });

  void it('gives 0 when nothing advanced or a core is new', () => {
    const a = times({ user: 5, idle: 5 });
    assert.deepEqual(cpuUsagePercent([a], [a, a]), [0, 0]);
  });

  void it('never exceeds 100', () => {
    // An idle counter that went backwards makes busy time exceed elapsed time.
    const prev = [times({ user: 50, idle: 100 })];
    const next = [times({ user: 70, idle: 90 })];
    assert.deepEqual(cpuUsagePercent(prev, next), [100]);
  });
});

void describe('parseMeminfo', () => {
  void it('uses MemAvailable as free and converts KiB to bytes', () => {
    const text = [
      'MemTotal:        8000000 kB',
      'MemFree:          100000 kB',
      'MemAvailable:    3000000 kB',
      'Buffers:           20000 kB',
      'Cached:          1500000 kB',
      'HugePages_Total:       0',
    ].join('\n');
    assert.deepEqual(parseMeminfo(text), { total: 8000000 * 1024, free: 3000000 * 1024 });
  });

  void it('estimates free memory on kernels without MemAvailable', () => {
    const text = [
      'MemTotal: 1000 kB',
      'MemFree: 100 kB',
      'Buffers: 10 kB',
      'Cached: 200 kB',
      'Shmem: 30 kB',
      'SReclaimable: 5 kB',
    ].join('\n');
    assert.deepEqual(parseMeminfo(text), {
      total: 1000 * 1024,
      free: (100 + 10 + 200 + 5 - 30) * 1024,
    });
  });

  void it('gives zeros for empty input', () => {
    assert.deepEqual(parseMeminfo(''), { total: 0, free: 0 });
  });
});

void describe('parseNetDev', () => {
  void it('sums every interface, loopback included', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0',
      '  eth0:10000     100    2    9    0     0          0         3     7000      70    1    0    0     0       0          0',
      ' wlan0: 250 3 1 0 0 0 0 0 40 2 4 0 0 0 0 0',
    ].join('\n');
    assert.deepEqual(parseNetDev(text), {
      rx_bytes: 10750,
      rx_packets: 108,
      rx_errors: 3,
      tx_bytes: 7540,
      tx_packets: 77,
      tx_errors: 5,
    });
  });

  void it('gives zeros for empty input', () => {
    assert.deepEqual(parseNetDev(''), {
      rx_bytes: 0,
      tx_bytes: 0,
      rx_packets: 0,
      tx_packets: 0,
      rx_errors: 0,
      tx_errors: 0,
    });
  });
});

void describe('parseNvidiaSmi', () => {
  void it('reads the line the upstream event test mocks', () => {
    assert.deepEqual(parseNvidiaSmi('BUS1, 10.0 %, 100 MiB, 200 MiB\n'), [
      { id: 'BUS1', processor_usage: 10, mem_usage: 50 },
    ]);
  });

  void it('reads several GPUs and mixed memory units', () => {
    const csv = '00000000:3B:00.0, 87 %, 3 GiB, 12288 MiB\n00000000:AF:00.0, 0 %, 0 MiB, 16 GiB\n';
    assert.deepEqual(parseNvidiaSmi(csv), [
      { id: '00000000:3B:00.0', processor_usage: 87, mem_usage: 25 },
      { id: '00000000:AF:00.0', processor_usage: 0, mem_usage: 0 },
    ]);
  });

  void it('counts unavailable values as 0', () => {
    assert.deepEqual(parseNvidiaSmi('GPU7, [N/A], [N/A], [N/A]'), [
      { id: 'GPU7', processor_usage: 0, mem_usage: 0 },
    ]);
    assert.deepEqual(parseNvidiaSmi('GPU8'), [{ id: 'GPU8', processor_usage: 0, mem_usage: 0 }]);
  });

  void it('gives no GPUs for empty output', () => {
    assert.deepEqual(parseNvidiaSmi(''), []);
  });
});

const ROCM_OUTPUT = JSON.stringify({
  card1: { 'GPU use (%)': '40.5', 'GPU memory use (%)': '7.25', 'PCI Bus': 'PCI-B' },
  card0: {
    'GPU use (%)': '2.5',
    'GPU memory use (%)': '30.0',
    'PCI Bus': 'PCI-A',
    'Card series': 'ignored',
  },
});

void describe('parseRocmSmi', () => {
  void it('sorts cards by key and reads the three fields', () => {
    assert.deepEqual(parseRocmSmi(ROCM_OUTPUT), [
      { id: 'PCI-A', processor_usage: 2.5, mem_usage: 30 },
      { id: 'PCI-B', processor_usage: 40.5, mem_usage: 7.25 },
    ]);
  });

  void it('counts non-numeric usages as 0', () => {
    const json = JSON.stringify({
      card0: { 'GPU use (%)': 'N/A', 'GPU memory use (%)': '', 'PCI Bus': 'X' },
    });
    assert.deepEqual(parseRocmSmi(json), [{ id: 'X', processor_usage: 0, mem_usage: 0 }]);
  });

  void it('rejects output that is not a map of cards with string fields', () => {
    assert.throws(() => parseRocmSmi('not json'));
    assert.throws(() => parseRocmSmi('[]'));
    assert.throws(() => parseRocmSmi(JSON.stringify({ card0: { 'GPU use (%)': '1' } })));
    assert.throws(() =>
      parseRocmSmi(
        JSON.stringify({ card0: { 'GPU use (%)': 1, 'GPU memory use (%)': '1', 'PCI Bus': 'X' } }),
      ),
    );
  });
});

function procStatCoreCount(): number {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8')).length;
  } catch {
    return os.cpus().length;
  }
}

void describe('HwMonitor on this machine', () => {
  void it('samples twice with the upstream shape', async () => {
    const monitor = new HwMonitor({ nvidia: false, amd: false });
    const first = await monitor.sample();
    // Past sysinfo's 200 ms floor, so the second sample re-reads the CPU counters.
    await new Promise((resolve) => setTimeout(resolve, 250));
    const second = await monitor.sample();
    const cores = [os.cpus().length, procStatCoreCount()];
    for (const state of [first, second]) {
      assert.deepEqual(Object.keys(state).sort(), [
        'amd_gpus',
        'cpu_usage',
        'memory_usage',
        'network_usage',
        'nvidia_gpus',
        'timestamp',
      ]);
      const usage = state.cpu_usage.cpu_per_core_percent_usage;
      assert.ok(
        cores.includes(usage.length),
        `${usage.length} cores, expected one of ${cores.join(' or ')}`,
      );
      for (const u of usage) {
        assert.ok(u >= 0 && u <= 100, `usage ${u}`);
      }
      assert.ok(state.memory_usage.total > 0);
      assert.ok(
        state.memory_usage.free >= 0 && state.memory_usage.free <= state.memory_usage.total,
      );
      assert.ok(Number.isInteger(state.memory_usage.total));
      for (const value of Object.values(state.network_usage)) {
        assert.ok(Number.isInteger(value) && value >= 0);
      }
      assert.equal(state.nvidia_gpus, null);
      assert.equal(state.amd_gpus, null);
      assert.ok(Number.isInteger(state.timestamp));
      assert.ok(Math.abs(state.timestamp - Date.now() / 1000) < 60);
    }
    assert.ok(second.network_usage.rx_bytes >= first.network_usage.rx_bytes);
  });

  void it('gives zeros when procfs is missing', async () => {
    const monitor = new HwMonitor({ nvidia: false, amd: false, procRoot: '/nonexistent-proc' });
    const state = await monitor.sample();
    assert.deepEqual(state.cpu_usage.cpu_per_core_percent_usage, []);
    assert.deepEqual(state.memory_usage, { total: 0, free: 0 });
    assert.deepEqual(Object.values(state.network_usage), [0, 0, 0, 0, 0, 0]);
  });
});

void describe('HwMonitor GPU queries', () => {
  let dir = '';
  const savedPath = process.env['PATH'];

  function tool(name: string, script: string): void {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${script}\n`);
    chmodSync(file, 0o755);
  }

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hq-hwmon-'));
    configureLogging({ debug: false, enabled: false });
    // Only the mocks are on PATH, so a real nvidia-smi on the machine cannot leak in.
    process.env['PATH'] = dir;
  });

  after(() => {
    process.env['PATH'] = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  void it('runs mocked nvidia-smi and rocm-smi found on PATH', async () => {
    tool(
      'nvidia-smi',
      'test "$1 $2" = "--format=csv,noheader --query-gpu=pci.bus_id,utilization.gpu,memory.used,memory.total" || exit 3\n' +
        "echo 'BUS1, 10.0 %, 100 MiB, 200 MiB'",
    );
    tool(
      'rocm-smi',
      'test "$*" = "--json --showuse --showbus --showmemuse" || exit 3\n' + `echo '${ROCM_OUTPUT}'`,
    );
    const state = await new HwMonitor({ nvidia: true, amd: true }).sample();
    assert.deepEqual(state.nvidia_gpus, {
      gpus: [{ id: 'BUS1', processor_usage: 10, mem_usage: 50 }],
    });
    assert.deepEqual(state.amd_gpus, {
      gpus: [
        { id: 'PCI-A', processor_usage: 2.5, mem_usage: 30 },
        { id: 'PCI-B', processor_usage: 40.5, mem_usage: 7.25 },
      ],
    });
  });

  void it('queries only the families it was asked for', async () => {
    tool('nvidia-smi', "echo 'BUS1, 10.0 %, 100 MiB, 200 MiB'");
    const state = await new HwMonitor({ nvidia: false, amd: true }).sample();
    assert.equal(state.nvidia_gpus, null);
  });

  void it('gives null for a failing, garbled or missing tool', async () => {
    tool('nvidia-smi', "echo 'BUS1, 1 %, 1 MiB, 2 MiB'; exit 1");
    tool('rocm-smi', "echo '{not json'");
    const failing = await new HwMonitor({ nvidia: true, amd: true }).sample();
    assert.equal(failing.nvidia_gpus, null);
    assert.equal(failing.amd_gpus, null);
    rmSync(path.join(dir, 'nvidia-smi'));
    rmSync(path.join(dir, 'rocm-smi'));
    const missing = await new HwMonitor({ nvidia: true, amd: true }).sample();
    assert.equal(missing.nvidia_gpus, null);
    assert.equal(missing.amd_gpus, null);
  });
});
