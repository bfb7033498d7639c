/**
 * Detects what a worker offers when the user does not say: CPUs (grouped by NUMA node, limited
 * to this process's affinity mask), memory in MiB, and GPUs named by the usual environment
 * variables. `sysRoot` and `procRoot` are injectable so tests can use fixture trees.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HqError } from '../common/errors.js';
import type { ResourceDescriptorItem, ResourceDescriptorKind } from '../common/resources.js';

/** Parses a kernel CPU list such as `0-3,8,10-11`. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  const trimmed = text.trim();
  if (trimmed === '') {
    return out;
  }
  for (const part of trimmed.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) {
      throw new HqError('HQ_INVALID_RESOURCE', `Invalid CPU list '${text}'`);
    }
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (end < start) {
      throw new HqError('HQ_INVALID_RESOURCE', `Invalid CPU list '${text}'`);
    }
    for (let i = start; i <= end; i++) {
      out.push(i);
    }
  }
  return out;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export interface DetectRoots {
  sysRoot: string;
  procRoot: string;
}

const DEFAULT_ROOTS: DetectRoots = { sysRoot: '/sys', procRoot: '/proc' };

/** The CPU ids this process may run on (its affinity mask), or null when unknown. */
export function allowedCpus(roots: DetectRoots = DEFAULT_ROOTS): Set<number> | null {
  const status = readText(path.join(roots.procRoot, 'self/status'));
  const line = status?.split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
  if (line === undefined) {
    return null;
  }
  return new Set(parseCpuList(line.slice('Cpus_allowed_list:'.length)));
}

export function detectCpus(roots: DetectRoots = DEFAULT_ROOTS): ResourceDescriptorKind {
  const allowed = allowedCpus(roots);
  const possible = readText(path.join(roots.sysRoot, 'devices/system/node/possible'));
  const groups: string[][] = [];
  if (possible !== null) {
    for (const node of parseCpuList(possible)) {
      const list = readText(path.join(roots.sysRoot, `devices/system/node/node${node}/cpulist`));
      if (list === null) {
        continue;
      }
      const cpus = parseCpuList(list).filter((c) => allowed === null || allowed.has(c));
      if (cpus.length > 0) {
        groups.push(cpus.map(String));
      }
    }
  }
  if (groups.length === 0) {
    const cpus = allowed !== null ? [...allowed].sort((a, b) => a - b) : null;
    if (cpus !== null && cpus.length > 0) {
      return { kind: 'list', values: cpus.map(String) };
    }
    return { kind: 'range', start: 0, end: os.availableParallelism() - 1 };
  }
  if (groups.length === 1) {
    return { kind: 'list', values: groups[0]! };
  }
  return { kind: 'groups', groups };
}

/** Keeps only the first CPU of each set of hyper-thread siblings. */
export function pruneHyperThreading(
  kind: ResourceDescriptorKind,
  roots: DetectRoots = DEFAULT_ROOTS,
): ResourceDescriptorKind {
  const keep = (cpu: string): boolean => {
    const siblings = readText(
      path.join(roots.sysRoot, `devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`),
    );
    if (siblings === null) {
      return true;
    }
    const list = parseCpuList(siblings);
    return list.length === 0 || String(Math.min(...list)) === cpu;
  };
  switch (kind.kind) {
    case 'list':
      return { kind: 'list', values: kind.values.filter(keep) };
    case 'groups':
      return { kind: 'groups', groups: kind.groups.map((g) => g.filter(keep)) };
    case 'range': {
      const values: string[] = [];
      for (let i = kind.start; i <= kind.end; i++) {
        values.push(String(i));
      }
      return { kind: 'list', values: values.filter(keep) };
    }
    case 'sum':
      return kind;
  }
}

export type DetectComponent = 'cpus' | 'mem' | 'gpus/nvidia' | 'gpus/amd';

export function parseDetectResources(text: string): Set<DetectComponent> {
  if (text === 'all') {
    return new Set(['cpus', 'mem', 'gpus/nvidia', 'gpus/amd']);
  }
  if (text === 'none') {
    return new Set();
  }
  const out = new Set<DetectComponent>();
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p !== 'cpus' && p !== 'mem' && p !== 'gpus/nvidia' && p !== 'gpus/amd') {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Invalid value '${p}' for --detect-resources: expected all, none, or a list of cpus, mem, gpus/nvidia, gpus/amd`,
      );
    }
    out.add(p);
  }
  return out;
}

function gpuIdsFromEnv(variable: string): string[] | null {
  const value = process.env[variable];
  if (value === undefined || value.trim() === '') {
    return null;
  }
  const ids = value.split(',').map((s) => s.trim());
  if (new Set(ids).size !== ids.length || ids.some((s) => s === '')) {
    return null;
  }
  return ids;
}

/** Resources other than CPUs that are detected and not already defined by the user. */
export function detectAdditional(
  components: Set<DetectComponent>,
  defined: Set<string>,
  roots: DetectRoots = DEFAULT_ROOTS,
): ResourceDescriptorItem[] {
  const out: ResourceDescriptorItem[] = [];
  if (components.has('gpus/nvidia') && !defined.has('gpus/nvidia')) {
    let ids = gpuIdsFromEnv('CUDA_VISIBLE_DEVICES');
    if (ids === null) {
      try {
        const n = fs.readdirSync(path.join(roots.procRoot, 'driver/nvidia/gpus')).length;
        ids = n > 0 ? Array.from({ length: n }, (_, i) => String(i)) : null;
      } catch {
        ids = null;
      }
    }
    if (ids !== null) {
      out.push({ name: 'gpus/nvidia', kind: 'list', values: ids });
    }
  }
  if (components.has('gpus/amd') && !defined.has('gpus/amd')) {
    const ids = gpuIdsFromEnv('ROCR_VISIBLE_DEVICES');
    if (ids !== null) {
      out.push({ name: 'gpus/amd', kind: 'list', values: ids });
    }
  }
  if (components.has('mem') && !defined.has('mem')) {
    const mib = Math.floor(os.totalmem() / (1024 * 1024));
    out.push({ name: 'mem', kind: 'sum', size: mib * 10_000 });
  }
  return out;
}

/** `[D-]HH:MM:SS`, `MM:SS` or `SS` (Slurm and PBS walltimes) in milliseconds, or null. */
export function parseWalltime(text: string): number | null {
  const m = /^(?:(\d+)-)?(?:(?:(\d+):)?(\d+):)?(\d+)$/.exec(text.trim());
  if (m === null) {
    return null;
  }
  const [, d, h, min, s] = m;
  return (
    ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0)) * 1000
  );
}

/** The remaining walltime of a PBS job from `qstat -f <id> -F json`, or null. */
export function pbsRemainingMs(qstatJson: string, jobId: string): number | null {
  const data = JSON.parse(qstatJson) as {
    Jobs?: Record<
      string,
      { Resource_List?: { walltime?: string }; resources_used?: { walltime?: string } }
    >;
  };
  const job = data.Jobs?.[jobId];
  const limit = job?.Resource_List?.walltime;
  if (limit === undefined) {
    return null;
  }
  const total = parseWalltime(limit);
  const used = parseWalltime(job?.resources_used?.walltime ?? '0') ?? 0;
  return total === null ? null : Math.max(0, total - used);
}

/** The remaining time of a Slurm job from `scontrol show job <id>`, or null. */
export function slurmRemainingMs(scontrol: string): number | null {
  const items = new Map<string, string>();
  for (const token of scontrol.split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) {
      items.set(token.slice(0, eq), token.slice(eq + 1));
    }
  }
  const limit = items.get('TimeLimit');
  if (limit === undefined || limit === 'UNLIMITED' || limit === 'Partition_Limit') {
    return null;
  }
  const total = parseWalltime(limit);
  const used = parseWalltime(items.get('RunTime') ?? '0') ?? 0;
  return total === null ? null : Math.max(0, total - used);
}
