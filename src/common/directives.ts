/**
 * `#HQ` directives and the shebang of a submitted script. Only the head of the file is read
 * (MAX_DIRECTIVES_PREFIX_BYTES); the scan stops at the first line that is not a comment.
 */
import * as fs from 'node:fs';
import { HqError } from './errors.js';

export const MAX_DIRECTIVES_PREFIX_BYTES = 32 * 1024;

/** Splits on spaces; `"..."` groups (with `\"` inside), `\ ` and `\"` escape outside quotes. */
export function splitDirectiveArgs(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && text[j + 1] === '"') {
          j++;
        }
        current += text[j];
      }
      if (j >= text.length) {
        throw new HqError('HQ_INVALID_ARGUMENT', `Unterminated quote in directive: ${text}`);
      }
      i = j;
    } else if (c === '\\' && (text[i + 1] === ' ' || text[i + 1] === '"')) {
      current += text[i + 1];
      inWord = true;
      i++;
    } else if (c === ' ' || c === '\t') {
      if (inWord) {
        out.push(current);
        current = '';
        inWord = false;
      }
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) {
    out.push(current);
  }
  return out;
}

export interface ScriptMetadata {
  shebang: string[] | null;
  args: string[];
}

export function parseDirectives(text: string): ScriptMetadata {
  let shebang: string[] | null = null;
  const args: string[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.replace(/\r$/, '').trimStart();
    if (line.startsWith('#HQ ')) {
      const value = line.slice(4).trim();
      if (value !== '') {
        args.push(...splitDirectiveArgs(value));
      }
      continue;
    }
    if (index === 0 && line.startsWith('#!')) {
      shebang = splitDirectiveArgs(line.slice(2).trim());
    }
    if (line === '' || line.startsWith('#')) {
      continue;
    }
    break;
  }
  return { shebang, args };
}

export function readDirectivesFile(file: string): ScriptMetadata {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Cannot read directives from ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory (os error 2)' : String(e)}`,
    );
  }
  try {
    const buffer = Buffer.alloc(MAX_DIRECTIVES_PREFIX_BYTES);
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    return parseDirectives(buffer.subarray(0, n).toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

/** POSIX-shell-like word splitting (single quotes, double quotes, backslashes), like shlex. */
export function splitShellWords(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let inWord = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) {
        throw new HqError('HQ_INVALID_ARGUMENT', `Unterminated quote in: ${text}`);
      }
      current += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) {
          j++;
        }
        current += text[j];
      }
      if (j >= text.length) {
        throw new HqError('HQ_INVALID_ARGUMENT', `Unterminated quote in: ${text}`);
      }
      inWord = true;
      i = j + 1;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[i + 1];
      inWord = true;
      i += 2;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) {
        out.push(current);
        current = '';
        inWord = false;
      }
      i++;
    } else {
      current += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) {
    out.push(current);
  }
  return out;
}
