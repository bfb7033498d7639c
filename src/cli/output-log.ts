/**
 * `hq output-log <PATH> [--server-uid UID] summary | jobs | show | cat | export`: reads the
 * `.hqs` files that workers write into a `--stream` directory.
 *
 * Only `summary` follows the output mode; the other subcommands print the same in every mode,
 * as upstream does (`export` is always JSON, `cat` writes the raw bytes).
 */
import { writeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { HqError } from '../common/errors.js';
import { formatSize } from '../common/duration.js';
import { idRangesToArray, parseIdRanges } from '../common/id-set.js';
import {
  OutputLog,
  lastInstance,
  type ChunkRef,
  type InstanceLog,
  type StreamChannel,
} from '../common/stream-format.js';
import { makeContext, parseIntOption, withGlobals } from './context.js';
import { printJson } from './output.js';
import { renderVerticalTable, type Cell } from './table.js';

type Run = (f: () => Promise<number> | number) => void;

interface Target {
  path: string;
  serverUid: string | null;
  /** `hq log` (the seeds' name): `cat <CHANNEL>` may leave out the job when the log holds one. */
  inferJob: boolean;
}

/** Writes bytes to stdout in large blocks; a closed pipe (`| head`) ends the output quietly. */
class StdoutWriter {
  private parts: Buffer[] = [];
  private size = 0;
  private broken = false;

  write(data: Buffer | string): void {
    if (this.broken) {
      return;
    }
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    this.parts.push(buf);
    this.size += buf.length;
    if (this.size >= 256 * 1024) {
      this.flush();
    }
  }

  flush(): void {
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    let offset = 0;
    while (offset < data.length && !this.broken) {
      try {
        offset += writeSync(1, data, offset);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          continue;
        }
        if (code === 'EPIPE') {
          this.broken = true;
          return;
        }
        throw e;
      }
    }
  }
}

function parseChannel(text: string, name: string): StreamChannel {
  if (text === 'stdout') {
    return 0;
  }
  if (text === 'stderr') {
    return 1;
  }
  throw new HqError(
    'HQ_INVALID_ARGUMENT',
    `invalid value '${text}' for '${name}': expected stdout or stderr`,
  );
}

/** `--task 3-4,2`: the ids in the order written (cat and export print them in that order). */
function parseTasks(text: string | undefined): number[] | null {
  return text === undefined ? null : idRangesToArray(parseIdRanges(text));
}

function withLog<T>(target: Target, f: (log: OutputLog) => T): T {
  const log = OutputLog.open(target.path, target.serverUid);
  try {
    return f(log);
  } finally {
    log.close();
  }
}

function summaryCommand(target: Target, cmd: Command): number {
  const ctx = makeContext(cmd);
  const s = withLog(target, (log) => log.summary());
  if (ctx.mode === 'json') {
    printJson({
      filename: target.path,
      summary: {
        n_files: s.files,
        n_jobs: s.jobs,
        n_tasks: s.tasks,
        n_streams: s.streams,
        n_opened: s.opened,
        stdout_size: s.stdoutSize,
        stderr_size: s.stderrSize,
        n_superseded: s.superseded,
        superseded_stdout_size: s.supersededStdoutSize,
        superseded_stderr_size: s.supersededStderrSize,
      },
    });
    return 0;
  }
  if (ctx.mode === 'quiet') {
    return 0;
  }
  const bold = (text: string): Cell => ({ text, style: { bold: true } });
  const rows: Cell[][] = [
    [bold('Path'), target.path],
    [bold('Files'), String(s.files)],
    [bold('Jobs'), String(s.jobs)],
    [bold('Tasks'), String(s.tasks)],
    [bold('Opened streams'), String(s.opened)],
    [bold('Stdout/stderr size'), `${formatSize(s.stdoutSize)} / ${formatSize(s.stderrSize)}`],
    [bold('Superseded streams'), String(s.superseded)],
    [
      bold('Superseded stdout/stderr size'),
      `${formatSize(s.supersededStdoutSize)} / ${formatSize(s.supersededStderrSize)}`,
    ],
  ];
  const out = new StdoutWriter();
  out.write(renderVerticalTable(rows, ctx.colors));
  out.flush();
  return 0;
}

function jobsCommand(target: Target, cmd: Command): number {
  makeContext(cmd);
  const ids = withLog(target, (log) => log.jobIds());
  const out = new StdoutWriter();
  for (const id of ids) {
    out.write(`${id}\n`);
  }
  out.flush();
  return 0;
}

// Background colours of the `J.T:C>` prefixes, picked by task id.
const SHOW_COLORS = ['41', '42', '43', '44', '45', '46'];

function digits(n: number): number {
  return String(n).length;
}

function showCommand(target: Target, o: { job?: string; channel?: string }, cmd: Command): number {
  const ctx = makeContext(cmd);
  const jobFilter = o.job === undefined ? null : parseIntOption('--job <JOB>', o.job);
  const channelFilter = o.channel === undefined ? null : parseChannel(o.channel, '--channel');
  withLog(target, (log) => {
    let maxJob = -1;
    let maxTask = -1;
    for (const [jobId, tasks] of log.index) {
      maxJob = Math.max(maxJob, jobId);
      for (const taskId of tasks.keys()) {
        maxTask = Math.max(maxTask, taskId);
      }
    }
    if (maxJob < 0 || maxTask < 0) {
      return;
    }
    // The widths come from all jobs and tasks of the directory, not just the selected ones.
    const jobWidth = digits(maxJob);
    const taskWidth = digits(maxTask);
    const entries: {
      jobId: number;
      taskId: number;
      instance: InstanceLog;
      channel: StreamChannel;
      chunk: ChunkRef;
    }[] = [];
    for (const [jobId, tasks] of log.index) {
      if (jobFilter !== null && jobId !== jobFilter) {
        continue;
      }
      for (const [taskId, task] of tasks) {
        const instance = lastInstance(task);
        for (const channel of [0, 1] as const) {
          if (channelFilter !== null && channel !== channelFilter) {
            continue;
          }
          for (const chunk of instance.channels[channel]) {
            entries.push({ jobId, taskId, instance, channel, chunk });
          }
        }
      }
    }
    // A stable sort: chunks with the same time keep the job, task, channel, write order.
    entries.sort((a, b) => a.chunk.time - b.chunk.time);
    const out = new StdoutWriter();
    for (const e of entries) {
      const data = log.readChunk(e.instance, e.chunk);
      const header = `${String(e.jobId).padStart(jobWidth, '0')}.${String(e.taskId).padStart(taskWidth, '0')}:${e.channel}>`;
      const colored = ctx.colors
        ? `\u001b[${SHOW_COLORS[e.taskId % SHOW_COLORS.length]}m${header}\u001b[0m`
        : header;
      const text = data.toString('utf8');
      out.write(`${colored} ${text}${data[data.length - 1] === 0x0a ? '' : '\n'}`);
    }
    out.flush();
  });
  return 0;
}

/** The only job of the log, for `hq log <PATH> cat <CHANNEL>`. */
function onlyJob(log: OutputLog): number {
  const ids = log.jobIds();
  if (ids.length !== 1) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      ids.length === 0
        ? 'The log holds no job'
        : `The log holds jobs ${ids.join(', ')}: name one, as in \`cat <JOB> <CHANNEL>\``,
    );
  }
  return ids[0]!;
}

function catCommand(
  target: Target,
  jobText: string,
  channelText: string | undefined,
  o: { task?: string; allowUnfinished?: boolean },
  cmd: Command,
): number {
  makeContext(cmd);
  const jobId = channelText === undefined ? null : parseIntOption('<JOB>', jobText);
  const channel = parseChannel(channelText ?? jobText, '<CHANNEL>');
  const taskIds = parseTasks(o.task);
  withLog(target, (log) => {
    const selected = log.selectTasks(jobId ?? onlyJob(log), taskIds);
    if (o.allowUnfinished !== true) {
      for (const { taskId, instance } of selected) {
        if (!instance.finished) {
          throw new HqError('HQ_INVALID_ARGUMENT', `Stream for task ${taskId} is not finished`);
        }
      }
    }
    const out = new StdoutWriter();
    for (const { instance } of selected) {
      for (const chunk of instance.channels[channel]) {
        out.write(log.readChunk(instance, chunk));
      }
    }
    out.flush();
  });
  return 0;
}

function exportCommand(
  target: Target,
  jobText: string,
  o: { task?: string },
  cmd: Command,
): number {
  makeContext(cmd);
  const jobId = parseIntOption('<JOB>', jobText);
  const taskIds = parseTasks(o.task);
  const result = withLog(target, (log) =>
    log.selectTasks(jobId, taskIds).map(({ taskId, instance }) => ({
      finished: instance.finished,
      id: taskId,
      stdout: log.readChannel(instance, 0).toString('utf8'),
    })),
  );
  printJson(result);
  return 0;
}

const SUBCOMMANDS: readonly [string, string][] = [
  ['summary', 'Prints summary of the log file'],
  ['jobs', 'Prints job ids in the stream'],
  ['show', 'Prints the stream content ordered by time'],
  ['cat', "Prints the content of a stream's channel"],
  ['export', 'Exports stream into JSON'],
];

function subcommand(name: string, target: Target, run: Run): Command | null {
  const description = SUBCOMMANDS.find(([n]) => n === name)?.[1];
  if (description === undefined) {
    return null;
  }
  const cmd = withGlobals(new Command(name)).description(description);
  switch (name) {
    case 'summary':
      return cmd.action((_o: unknown, c: Command) => run(() => summaryCommand(target, c)));
    case 'jobs':
      return cmd.action((_o: unknown, c: Command) => run(() => jobsCommand(target, c)));
    case 'show':
      return cmd
        .option('--job <JOB>', 'Show only the given job')
        .addOption(
          new Option('--channel <CHANNEL>', 'Show only the specific channel').choices([
            'stdout',
            'stderr',
          ]),
        )
        .action((o: { job?: string; channel?: string }, c: Command) =>
          run(() => showCommand(target, o, c)),
        );
    case 'cat':
      return cmd
        .argument('<JOB>', 'Job id')
        .argument(target.inferJob ? '[CHANNEL]' : '<CHANNEL>', 'Channel name: "stdout" or "stderr"')
        .option('--task <TASK>', 'Prints only outputs of the selected tasks (array syntax)')
        .option('--allow-unfinished', 'Allow unfinished channels')
        .action(
          (
            job: string,
            channel: string | undefined,
            o: { task?: string; allowUnfinished?: boolean },
            c: Command,
          ) => run(() => catCommand(target, job, channel, o, c)),
        );
    default:
      return cmd
        .argument('<JOB>', 'Job to export')
        .option('--task <TASK>', 'Exports only output of the selected tasks (array syntax)')
        .action((job: string, o: { task?: string }, c: Command) =>
          run(() => exportCommand(target, job, o, c)),
        );
  }
}

/**
 * `hq output-log`; named `log` it is the seeds' `hq log <PATH> show | cat <CHANNEL> ...` for what
 * `hq submit --log <PATH>` streamed, where `cat` may leave out a log's only job.
 */
export function outputLogCommand(
  run: Run,
  commandName: 'output-log' | 'log' = 'output-log',
): Command {
  const outer = withGlobals(new Command(commandName))
    .description('Operations with the output of tasks streamed into a directory (`--stream`)')
    .usage('[options] <PATH> <COMMAND> [ARGS...]')
    .argument('[PATH]', 'Path of the stream directory')
    .argument('[COMMAND]', SUBCOMMANDS.map(([n]) => n).join(' | '))
    .argument('[ARGS...]', 'Arguments of the command')
    .option('--server-uid <SERVER_UID>', 'Filter files for the given server instance')
    // Our own help flag, so that `output-log <PATH> cat --help` reaches `cat`.
    .helpOption(false)
    .option('-h, --help', 'Print help')
    .allowUnknownOption()
    .addHelpText(
      'after',
      `\nCommands:\n${SUBCOMMANDS.map(([n, d]) => `  ${n.padEnd(9)}${d}`).join('\n')}\n`,
    );
  outer.action(
    (
      pathArg: string | undefined,
      name: string | undefined,
      args: string[],
      o: { serverUid?: string; help?: boolean },
      c: Command,
    ) => {
      if (name === undefined && o.help === true) {
        c.help();
      }
      if (pathArg === undefined) {
        c.error('error: the following required arguments were not provided:\n  <PATH>', {
          code: 'commander.missingArgument',
        });
        return;
      }
      if (name === undefined) {
        c.error(`error: 'hq ${commandName}' requires a subcommand but one was not provided`, {
          code: 'commander.missingArgument',
        });
        return;
      }
      const target: Target = {
        path: pathArg,
        serverUid: o.serverUid ?? null,
        inferJob: commandName === 'log',
      };
      const sub = subcommand(name, target, run);
      if (sub === null) {
        c.error(`error: unrecognized subcommand '${name}'`, { code: 'commander.unknownCommand' });
        return;
      }
      // Parsed as a child of `output-log`, so the global flags given before it still count.
      sub.parent = c;
      sub.exitOverride();
      sub.configureOutput(c.configureOutput());
      sub.parse(o.help === true ? [...args, '--help'] : args, { from: 'user' });
    },
  );
  return outer;
}
