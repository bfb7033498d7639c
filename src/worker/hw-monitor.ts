/**
 * Samples the worker's hardware state for `--overview-interval`: per-core CPU usage, memory,
 * network counters and, when the worker has such GPUs, NVIDIA/AMD GPU usage. The result has
 * upstream's `hw-state.state` shape so the server can write it as a `worker-overview` event
 * unchanged.
 *
 * Behaviour follows tako's `internal/worker/hwmonitor/` and the `sysinfo` crate it uses on Linux:
 * CPU usage is sysinfo's formula over `/proc/stat` deltas, memory is `/proc/meminfo` in bytes
 * with MemAvailable as "free", network counters are cumulative totals summed over every
 * interface (loopback included). GPUs come from `nvidia-smi` and `rocm-smi`.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { logger } from '../common/log.js';

/** Upstream's `hw-state.state` JSON shape, field names exactly as upstream serializes them. */
export interface HwState {
  cpu_usage: { cpu_per_core_percent_usage: number[] };
  /** Bytes. */
  memory_usage: { total: number; free: number };
  network_usage: {
    rx_bytes: number;
    tx_bytes: number;
    rx_packets: number;
    tx_packets: number;
    rx_errors: number;
    tx_errors: number;
  };
  nvidia_gpus: { gpus: GpuState[] } | null;
  amd_gpus: { gpus: GpuState[] } | null;
  /** Epoch seconds, integer. */
  timestamp: number;
}

/** One GPU: `id` is its PCI bus id, usages are percentages. */
export interface GpuState {
  id: string;
  processor_usage: number;
  mem_usage: number;
}

/** Cumulative jiffies of one core, as in a `cpuN` line of `/proc/stat`. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
  guest: number;
  guestNice: number;
}

/** sysinfo's MINIMUM_CPU_UPDATE_INTERVAL on Linux. */
const MIN_CPU_UPDATE_INTERVAL_MS = 200;
const GPU_QUERY_TIMEOUT_MS = 5_000;
const NVIDIA_SMI_ARGS = [
  '--format=csv,noheader',
  '--query-gpu=pci.bus_id,utilization.gpu,memory.used,memory.total',
];
const ROCM_SMI_ARGS = ['--json', '--showuse', '--showbus', '--showmemuse'];

const log = logger('hwmonitor');

/** Integer field of a kernel table; a missing or garbled value counts as 0. */
function counter(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) {
    return 0;
  }
  return Number(text);
}

/**
 * Parses a float the way Rust's `str::parse::<f32>` accepts it; anything else is null. `Number()`
 * alone would turn '' into 0 and accept hex, which upstream rejects.
 */
function parseRustFloat(text: string): number | null {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    return null;
  }
  return Number(text);
}

/** Parses the per-core `cpuN` lines of `/proc/stat`; the aggregate `cpu` line is skipped. */
export function parseProcStat(text: string): CpuTimes[] {
  const cores: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    if (!/^cpu\d+\s/.test(line)) {
      continue;
    }
    const f = line.trim().split(/\s+/).slice(1);
    cores.push({
      user: counter(f[0]),
      nice: counter(f[1]),
      system: counter(f[2]),
      idle: counter(f[3]),
      iowait: counter(f[4]),
      irq: counter(f[5]),
      softirq: counter(f[6]),
      steal: counter(f[7]),
      guest: counter(f[8]),
      guestNice: counter(f[9]),
    });
  }
  return cores;
}

// The kernel counts guest time inside user (and guest_nice inside nice); sysinfo subtracts it
// there and adds it back as its own term, so guest time is not counted twice.
function split(t: CpuTimes): { work: number; system: number; virt: number; total: number } {
  const user = Math.max(0, t.user - t.guest);
  const nice = Math.max(0, t.nice - t.guestNice);
  const system = t.system + t.irq + t.softirq;
  const virt = t.guest + t.guestNice;
  return {
    work: user + nice,
    system,
    virt,
    total: user + nice + system + t.idle + t.iowait + virt + t.steal,
  };
}

/**
 * Per-core busy percentage between two `/proc/stat` readings, with sysinfo's formula (user,
 * nice, system, irq, softirq, steal and guest time over all time, capped at 100). A core that
 * has no earlier reading, or whose counters did not advance, reports 0.
 */
export function cpuUsagePercent(prev: CpuTimes[], next: CpuTimes[]): number[] {
  return next.map((n, i) => {
    const p = prev[i];
    if (p === undefined) {
      return 0;
    }
    const a = split(p);
    const b = split(n);
    // Counters can go backwards after CPU hotplug; sysinfo saturates each delta at 0.
    const delta = (x: number, y: number): number => Math.max(0, y - x);
    const total = b.total > a.total ? b.total - a.total : 1;
    const busy =
      delta(a.work, b.work) +
      delta(a.system, b.system) +
      delta(p.steal, n.steal) +
      delta(a.virt, b.virt);
    return Math.min(100, (busy / total) * 100);
  });
}

/**
 * Total and available memory in bytes from `/proc/meminfo`. Upstream's "free" is sysinfo's
 * available memory: MemAvailable, or on kernels before 3.14 the old estimate
 * MemFree + Buffers + Cached + SReclaimable - Shmem.
 */
export function parseMeminfo(text: string): { total: number; free: number } {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) {
      continue;
    }
    kib.set(
      line.slice(0, colon),
      counter(
        line
          .slice(colon + 1)
          .trim()
          .split(/\s+/)[0],
      ),
    );
  }
  // "kB" in /proc/meminfo means KiB.
  const bytes = (key: string): number => (kib.get(key) ?? 0) * 1024;
  const available = kib.has('MemAvailable')
    ? bytes('MemAvailable')
    : Math.max(
        0,
        bytes('MemFree') +
          bytes('Buffers') +
          bytes('Cached') +
          bytes('SReclaimable') -
          bytes('Shmem'),
      );
  return { total: bytes('MemTotal'), free: available };
}

/**
 * Cumulative network counters from `/proc/net/dev`, summed over all interfaces. Upstream sums
 * sysinfo's totals over every entry of /sys/class/net, so loopback is included here too.
 */
export function parseNetDev(text: string): HwState['network_usage'] {
  const sum = {
    rx_bytes: 0,
    tx_bytes: 0,
    rx_packets: 0,
    tx_packets: 0,
    rx_errors: 0,
    tx_errors: 0,
  };
  for (const line of text.split('\n')) {
    // The two header lines have '|' and no ':'; old kernels print "eth0:123" without a space.
    const colon = line.indexOf(':');
    if (colon < 0) {
      continue;
    }
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    sum.rx_bytes += counter(f[0]);
    sum.rx_packets += counter(f[1]);
    sum.rx_errors += counter(f[2]);
    sum.tx_bytes += counter(f[8]);
    sum.tx_packets += counter(f[9]);
    sum.tx_errors += counter(f[10]);
  }
  return sum;
}

/** `100 MiB` and the like in bytes; null when the number does not parse (e.g. `[N/A]`). */
function parseNvidiaMemory(text: string): number | null {
  const [value = '', suffix = ''] = text.split(' ');
  const n = parseRustFloat(value);
  if (n === null) {
    return null;
  }
  const multiplier =
    suffix.trim() === 'KiB'
      ? 1024
      : suffix.trim() === 'MiB'
        ? 1024 ** 2
        : suffix.trim() === 'GiB'
          ? 1024 ** 3
          : 1;
  return n * multiplier;
}

/**
 * Parses `nvidia-smi --format=csv,noheader
 * --query-gpu=pci.bus_id,utilization.gpu,memory.used,memory.total`, one GPU a line, e.g.
 * `00000000:C8:00.0, 3 %, 512 MiB, 6144 MiB`. Unparseable values count as 0, as upstream;
 * mem_usage is used/total in percent. Never throws.
 */
export function parseNvidiaSmi(csv: string): GpuState[] {
  const gpus: GpuState[] = [];
  for (const line of csv.split('\n')) {
    if (line.trim() === '') {
      continue;
    }
    const [busId = '', util = '', used = '', total = ''] = line.split(',').map((v) => v.trim());
    const memUsed = parseNvidiaMemory(used) ?? 0;
    const memTotal = parseNvidiaMemory(total) ?? 0;
    gpus.push({
      id: busId,
      processor_usage: parseRustFloat(util.replace(/%+$/, '').trim()) ?? 0,
      mem_usage: memTotal > 0 ? (memUsed / memTotal) * 100 : 0,
    });
  }
  return gpus;
}

/**
 * Parses `rocm-smi --json --showuse --showbus --showmemuse`: an object of cards
 * (`{"card0": {"GPU use (%)": "5", "GPU memory use (%)": "12", "PCI Bus": "0000:C1:00.0"}}`),
 * returned sorted by card key. Values that are not numbers count as 0.
 * @throws Error when the output is not such an object or a card lacks one of the three string
 * fields; upstream then reports no AMD state at all.
 */
export function parseRocmSmi(json: string): GpuState[] {
  const data: unknown = JSON.parse(json);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new Error('rocm-smi output is not a JSON object');
  }
  const cards = Object.entries(data as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return cards.map(([name, card]) => {
    const field = (key: string): string => {
      const value: unknown =
        typeof card === 'object' && card !== null
          ? (card as Record<string, unknown>)[key]
          : undefined;
      if (typeof value !== 'string') {
        throw new Error(`rocm-smi card '${name}' has no string field '${key}'`);
      }
      return value;
    };
    return {
      id: field('PCI Bus'),
      processor_usage: parseRustFloat(field('GPU use (%)')) ?? 0,
      mem_usage: parseRustFloat(field('GPU memory use (%)')) ?? 0,
    };
  });
}

/** Runs a GPU tool found on PATH at call time; rejects on a spawn error, non-zero exit or timeout. */
function runTool(program: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      args,
      { encoding: 'utf8', timeout: GPU_QUERY_TIMEOUT_MS, windowsHide: true },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(new Error(`${error.message}\nStdout: ${stdout}\nStderr: ${stderr}`));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

async function readOrEmpty(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    // No /proc (a container without it, another OS): the fields read from it become zeros.
    return '';
  }
}

/** Per-sample hardware reader for one worker; see {@link HwMonitor.sample}. */
export class HwMonitor {
  private readonly nvidia: boolean;
  private readonly amd: boolean;
  private readonly procRoot: string;
  private cpuTimes: Promise<CpuTimes[]>;
  private cpuReadAt: number;
  private cpuUsage: number[] | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly failing = new Set<string>();

  /**
   * @param options.nvidia / options.amd query that GPU family; upstream does so only when the
   * worker has a `gpus/nvidia` / `gpus/amd` resource, since the tools may be slow or absent.
   * @param options.procRoot where procfs is mounted, for tests.
   */
  constructor(options: { nvidia: boolean; amd: boolean; procRoot?: string }) {
    this.nvidia = options.nvidia;
    this.amd = options.amd;
    this.procRoot = options.procRoot ?? '/proc';
    this.cpuReadAt = performance.now();
    this.cpuTimes = this.readCpuTimes();
  }

  /**
   * Takes one sample. CPU usage covers the time since the previous reading of the counters (the
   * first reading is taken at construction); like sysinfo, counters read less than 200 ms
   * apart are not re-read and the previous percentages are repeated (zeros before the first
   * real interval), because jiffy deltas that short are mostly noise. Overlapping calls are
   * serialized. Never throws: a failing nvidia-smi/rocm-smi gives null for that part and a
   * missing /proc gives zeros (an empty CPU list).
   */
  sample(): Promise<HwState> {
    const next = this.queue.then(() => this.takeSample());
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async takeSample(): Promise<HwState> {
    const [cpu, meminfo, netdev, nvidia, amd] = await Promise.all([
      this.sampleCpu(),
      readOrEmpty(path.join(this.procRoot, 'meminfo')),
      readOrEmpty(path.join(this.procRoot, 'net', 'dev')),
      this.nvidia ? this.queryGpus('nvidia-smi', NVIDIA_SMI_ARGS, parseNvidiaSmi) : null,
      this.amd ? this.queryGpus('rocm-smi', ROCM_SMI_ARGS, parseRocmSmi) : null,
    ]);
    return {
      cpu_usage: { cpu_per_core_percent_usage: cpu },
      memory_usage: parseMeminfo(meminfo),
      network_usage: parseNetDev(netdev),
      nvidia_gpus: nvidia,
      amd_gpus: amd,
      timestamp: Math.floor(Date.now() / 1000),
    };
  }

  private async readCpuTimes(): Promise<CpuTimes[]> {
    return parseProcStat(await readOrEmpty(path.join(this.procRoot, 'stat')));
  }

  private async sampleCpu(): Promise<number[]> {
    const prev = await this.cpuTimes;
    const now = performance.now();
    if (now - this.cpuReadAt < MIN_CPU_UPDATE_INTERVAL_MS) {
      return this.cpuUsage ?? prev.map(() => 0);
    }
    const next = await this.readCpuTimes();
    this.cpuTimes = Promise.resolve(next);
    this.cpuReadAt = now;
    this.cpuUsage = cpuUsagePercent(prev, next);
    return this.cpuUsage;
  }

  private async queryGpus(
    program: string,
    args: string[],
    parse: (output: string) => GpuState[],
  ): Promise<{ gpus: GpuState[] } | null> {
    try {
      const gpus = parse(await runTool(program, args));
      this.failing.delete(program);
      return { gpus };
    } catch (error) {
      // Upstream logs every failure; at short overview intervals that floods stderr, so only
      // the first failure of a run of failures is an error.
      const message = `failed to fetch GPU state from ${program}: ${(error as Error).message}`;
      if (this.failing.has(program)) {
        log.debug(message);
      } else {
        this.failing.add(program);
        log.error(message);
      }
      return null;
    }
  }
}
