/** `hq worker deploy-ssh`: starts `hq worker start` on every host of a host file through ssh. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { HqError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { hqPath } from '../common/self.js';

const log = logger('hq::client');

interface Host {
  host: string;
  port: number | null;
}

export function parseHostFile(text: string): Host[] {
  const hosts: Host[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      continue;
    }
    const m = /^([^:]+)(?::(\d+))?$/.exec(line);
    if (m === null) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Invalid line in the host file: '${line}'`);
    }
    hosts.push({ host: m[1]!, port: m[2] === undefined ? null : Number(m[2]) });
  }
  return hosts;
}

export async function deploySsh(
  hostFile: string,
  workerArgs: string[],
  showOutput: boolean,
): Promise<number> {
  let text: string;
  try {
    text = fs.readFileSync(hostFile, 'utf8');
  } catch (e) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Cannot read the host file ${hostFile}: ${errorMessage(e)}`,
    );
  }
  const hosts = parseHostFile(text);
  if (hosts.length === 0) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'The provided hostname is empty');
  }
  // The path this program was invoked by, so the remote side finds the same hq.
  const hq = hqPath();
  let failed = false;
  await Promise.all(
    hosts.map(
      (h) =>
        new Promise<void>((resolve) => {
          const args = [h.host, '-t', '-t'];
          if (h.port !== null) {
            args.push('-p', String(h.port));
          }
          args.push('--', hq, 'worker', 'start', ...workerArgs);
          const child = spawn('ssh', args, {
            stdio: ['ignore', showOutput ? 'inherit' : 'ignore', showOutput ? 'inherit' : 'ignore'],
          });
          log.info(`Started worker process at \`${h.host}\``);
          child.once('error', (e) => {
            log.error(
              `Worker at \`${h.host}\` has ended with an error: Cannot start SSH: ${errorMessage(e)}`,
            );
            failed = true;
            resolve();
          });
          child.once('exit', (code) => {
            if (code === 0) {
              log.info(`Worker at \`${h.host}\` has ended successfully`);
            } else {
              log.error(
                `Worker at \`${h.host}\` has ended with an error: Worker exited with code ${code ?? -1}`,
              );
              failed = true;
            }
            resolve();
          });
        }),
    ),
  );
  log.info('All workers have finished');
  if (failed) {
    throw new HqError('HQ_INTERNAL', 'Some workers have ended with an error');
  }
  return 0;
}
