/**
 * The one place that writes command output to stdout, in the three modes of upstream:
 * `cli` (tables and sentences), `json` (exactly one pretty JSON value, keys sorted) and `quiet`.
 */
import { writeSync } from 'node:fs';

export type OutputMode = 'cli' | 'json' | 'quiet';

/** A number that JSON must print as a float (`8.0`), as upstream's serde does for durations. */
export class JsonFloat {
  readonly value: number;

  constructor(value: number) {
    this.value = value;
  }
}

export function float(value: number): JsonFloat {
  return new JsonFloat(value);
}

function stringifySorted(value: unknown, indent: string): string {
  if (value instanceof JsonFloat) {
    return Number.isInteger(value.value) ? `${value.value}.0` : String(value.value);
  }
  if (value === null || value === undefined) {
    return 'null';
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      return '[]';
    }
    const inner = indent + '  ';
    return `[\n${value.map((v) => inner + stringifySorted(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) {
      return '{}';
    }
    const inner = indent + '  ';
    return `{\n${entries
      .map(([k, v]) => `${inner}${JSON.stringify(k)}: ${stringifySorted(v, inner)}`)
      .join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** One-line JSON with keys in alphabetical order at every level (NDJSON output). */
export function toCompactJson(value: unknown): string {
  if (value instanceof JsonFloat) {
    return Number.isInteger(value.value) ? `${value.value}.0` : String(value.value);
  }
  if (value === null || value === undefined) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => toCompactJson(v)).join(',')}]`;
  }
  if (typeof value === 'object' && !(value instanceof Uint8Array)) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${toCompactJson(v)}`).join(',')}}`;
  }
  if (value instanceof Uint8Array) {
    return `[${value.join(',')}]`;
  }
  return JSON.stringify(value);
}

/** Pretty JSON with keys in alphabetical order at every level. */
export function toSortedJson(value: unknown): string {
  return stringifySorted(value, '');
}

export function writeOut(text: string): void {
  const buffer = Buffer.from(text);
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += writeSync(1, buffer, offset);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        continue;
      }
      if (code === 'EPIPE') {
        return; // `hq ... | head`: the reader is gone, which is fine
      }
      throw e;
    }
  }
}

export function printLine(text: string): void {
  writeOut(`${text}\n`);
}

export function printJson(value: unknown): void {
  writeOut(`${toSortedJson(value)}\n`);
}

/** RFC 3339 in UTC with nanoseconds, as upstream prints dates in JSON. */
export function jsonDate(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2024-01-01T00:00:00.123Z
  return `${iso.slice(0, 23)}000000Z`;
}

/** `%F %T %Z` in UTC, as upstream's server info and submission dates. */
export function tableDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}
