/**
 * Opening a journal at server start: an existing file is replayed into a fresh state through
 * `ServerState.apply` (the same function live operation uses) and settled; a torn tail is cut;
 * then the writer appends to it. Replaying journals nothing and touches no socket.
 */
import * as fs from 'node:fs';
import { HqError, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { ServerState } from '../state.js';
import { scanJournal } from './format.js';
import { JournalWriter } from './writer.js';

const log = logger('hq::server');

export interface OpenedJournal {
  state: ServerState;
  writer: JournalWriter;
  /** Whether an earlier run's records were replayed. */
  replayed: boolean;
}

export function openJournal(file: string, flushPeriodMs: number): OpenedJournal {
  const state = new ServerState();
  let scan = { validEnd: 0, needsHeader: true, tornBytes: 0, records: 0 };
  if (fs.existsSync(file)) {
    const started = Date.now();
    try {
      scan = scanJournal(file, (r) => state.apply(r.time, r.event));
    } catch (e) {
      if (e instanceof HqError) {
        throw e;
      }
      throw new HqError('HQ_INVALID_ARGUMENT', `Cannot read journal ${file}: ${errorMessage(e)}`);
    }
    if (scan.tornBytes > 0) {
      log.warn('Journal contains not fully written data; they will be removed from the log');
    }
    if (scan.records > 0) {
      state.settleAfterRestore();
      // As upstream: a restored server skips one worker id.
      state.maxWorkerId++;
      log.info(
        `Journal ${file} replayed: ${scan.records} events, ${state.jobs.size} unfinished jobs, in ${Date.now() - started} ms`,
      );
    }
  }
  let writer: JournalWriter;
  try {
    writer = new JournalWriter(file, {
      validEnd: scan.validEnd,
      needsHeader: scan.needsHeader,
      flushPeriodMs,
    });
  } catch (e) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Cannot create event log file at \`${file}\`: ${errorMessage(e)}`,
    );
  }
  return { state, writer, replayed: scan.records > 0 };
}
