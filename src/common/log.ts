/**
 * A small synchronous logger to stderr. Two formats, like upstream: a short one
 * (`<time> LEVEL message`) and, with --debug or a debug RUST_LOG/HQ_LOG, a bracketed one
 * (`[<time> LEVEL component] message`) that table parsers skip as log noise.
 */
import { writeSync } from 'node:fs';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

let threshold: LogLevel = 'info';
let bracketed = false;
let enabled = true;

export function configureLogging(options: { debug: boolean; enabled?: boolean }): void {
  const envFilter = `${process.env['RUST_LOG'] ?? ''} ${process.env['HQ_LOG'] ?? ''}`;
  const envDebug = /debug|trace/.test(envFilter);
  threshold = options.debug || envDebug ? 'debug' : 'info';
  bracketed = options.debug || envDebug;
  enabled = options.enabled ?? true;
}

function stamp(): string {
  const iso = new Date().toISOString();
  return bracketed ? iso : `${iso.slice(0, 19)}Z`;
}

function write(level: LogLevel, component: string, message: string): void {
  if (!enabled || ORDER[level] > ORDER[threshold]) {
    return;
  }
  const name = level.toUpperCase();
  const line = bracketed
    ? `[${stamp()} ${name} ${component}] ${message}\n`
    : `${stamp()} ${name} ${message}\n`;
  try {
    writeSync(2, line);
  } catch {
    // stderr closed: nothing sensible left to do with a log line.
  }
}

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export function logger(component: string): Logger {
  return {
    error: (m) => write('error', component, m),
    warn: (m) => write('warn', component, m),
    info: (m) => write('info', component, m),
    debug: (m) => write('debug', component, m),
  };
}
