/** `hq journal ...`: export, replay, stream, flush, prune and report. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { HqError } from '../common/errors.js';
import { logger } from '../common/log.js';
import type { TimedEvent } from '../server/events.js';
import { durationOption, makeContext, withGlobals, withSession } from './context.js';
import { eventPayloadJson, formatEventLine } from './journal-format.js';
import { writeOut } from './output.js';

const log = logger('hq::client');

export async function readJournalFile(file: string): Promise<TimedEvent[]> {
  if (!fs.existsSync(file)) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Cannot open event log file at \`${file}\`: not found`,
    );
  }
  const { readJournal } = await import('../server/journal/format.js');
  return readJournal(file);
}

function printRecords(records: TimedEvent[]): number {
  let out = '';
  let count = 0;
  for (const r of records) {
    const line = formatEventLine(r);
    if (line !== null) {
      out += `${line}\n`;
      count++;
    }
  }
  if (out.length > 0) {
    writeOut(out);
  }
  return count;
}

async function exportJournal(file: string, cmd: Command): Promise<number> {
  makeContext(cmd);
  const count = printRecords(await readJournalFile(path.resolve(file)));
  log.info(`Outputted ${count} ${count === 1 ? 'event' : 'events'}`);
  return 0;
}

async function streamJournal(mode: 'past' | 'past-live', cmd: Command): Promise<number> {
  return withSession(cmd, async (session) => {
    await session.stream({ mode }, (records) => {
      printRecords(records);
    });
    return 0;
  });
}

async function simpleCall(op: 'journal-flush' | 'journal-prune', cmd: Command): Promise<number> {
  return withSession(cmd, async (session) => {
    await session.call(op, {});
    return 0;
  });
}

interface ReportOpts {
  startTime?: string;
  endTime?: string;
}

async function report(
  file: string,
  output: string,
  opts: ReportOpts,
  cmd: Command,
): Promise<number> {
  makeContext(cmd);
  const records = await readJournalFile(path.resolve(file));
  const events = records.flatMap((r) => {
    const payload = eventPayloadJson(r.event);
    return payload === null
      ? []
      : [{ time: new Date(r.time).toISOString(), event: payload as Record<string, unknown> }];
  });
  const { renderReport } = await import('../report/report.js');
  const html = renderReport(events, {
    startTimeMs:
      opts.startTime === undefined
        ? null
        : durationOption('--start-time <START_TIME>', opts.startTime),
    endTimeMs:
      opts.endTime === undefined ? null : durationOption('--end-time <END_TIME>', opts.endTime),
  });
  fs.writeFileSync(path.resolve(output), html);
  return 0;
}

export function journalCommand(run: (f: () => Promise<number> | number) => void): Command {
  const journal = new Command('journal').description('Manage events and journal data');
  withGlobals(journal);
  journal.addCommand(
    withGlobals(new Command('export'))
      .description('Export events from a journal file as NDJSON on stdout')
      .argument('<JOURNAL>', 'Path to a journal (created with `hq server start --journal=<PATH>`)')
      .action((file: string, _o: unknown, cmd: Command) => run(() => exportJournal(file, cmd))),
  );
  journal.addCommand(
    withGlobals(new Command('stream'))
      .description('Print all events since the start of the server, then new events until it stops')
      .action((_o: unknown, cmd: Command) => run(() => streamJournal('past-live', cmd))),
  );
  journal.addCommand(
    withGlobals(new Command('replay'))
      .description('Print all events since the start of the server, then exit')
      .action((_o: unknown, cmd: Command) => run(() => streamJournal('past', cmd))),
  );
  journal.addCommand(
    withGlobals(new Command('prune'))
      .description('Remove finished jobs and lost workers from the journal of a running server')
      .action((_o: unknown, cmd: Command) => run(() => simpleCall('journal-prune', cmd))),
  );
  journal.addCommand(
    withGlobals(new Command('flush'))
      .description('Make a running server write its journal to the disk')
      .action((_o: unknown, cmd: Command) => run(() => simpleCall('journal-flush', cmd))),
  );
  journal.addCommand(
    withGlobals(new Command('report'))
      .description('Write a self-contained HTML report (works offline) from a journal')
      .argument('<JOURNAL>', 'Path to a journal')
      .argument('<OUTPUT>', 'Path of the HTML file to write')
      .option(
        '--start-time <START_TIME>',
        'Leave out what happened before this time since the server start',
      )
      .option(
        '--end-time <END_TIME>',
        'Leave out what happened after this time since the server start',
      )
      .action((file: string, output: string, o: ReportOpts, cmd: Command) =>
        run(() => report(file, output, o, cmd)),
      ),
  );
  return journal;
}
