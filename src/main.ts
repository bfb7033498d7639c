/**
 * The `hq` program: server, worker and client in one executable. Parses the command line,
 * runs one command, maps errors to a one-line message and exit code 1.
 */
import { Command, CommanderError } from 'commander';
import { HqError, errorMessage } from './common/errors.js';
import { VERSION } from './common/version.js';
import { clapStyle, withGlobals } from './cli/context.js';
import { printJson } from './cli/output.js';
import { jobCommand, jobShortcutCommands, taskCommand } from './cli/job-commands.js';
import { serverCommand } from './cli/server-commands.js';
import { defineSubmit } from './cli/submit-command.js';
import { workerCommand } from './cli/worker-commands.js';
import { outputLogCommand } from './cli/output-log.js';
import { allocCommand } from './cli/alloc-commands.js';
import { journalCommand } from './cli/journal-commands.js';
import { apiCommand } from './cli/api-command.js';
import { dashboardCommand } from './cli/dashboard-command.js';
import { docCommand } from './cli/doc-command.js';
import { generateCompletionCommand } from './cli/completion.js';

function wantsJson(argv: string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--output-mode=json' || (a === '--output-mode' && argv[i + 1] === 'json')) {
      return true;
    }
  }
  return process.env['HQ_OUTPUT_MODE'] === 'json';
}

function reportError(error: unknown, json: boolean): void {
  const message = errorMessage(error);
  if (json) {
    printJson({ error: message });
  } else {
    process.stderr.write(`Error: ${message}\n`);
  }
}

function main(): void {
  const argv = process.argv.slice(2);
  const json = wantsJson(argv);
  const run = (f: () => Promise<number> | number): void => {
    Promise.resolve()
      .then(f)
      .then(
        (code) => {
          process.exitCode = code;
          // Every role has closed its resources by now; stdout was written synchronously.
          setImmediate(() => process.exit(code));
        },
        (e: unknown) => {
          reportError(e, json);
          if (!(e instanceof HqError)) {
            if (process.env['HQ_DEBUG'] !== undefined && e instanceof Error && e.stack) {
              process.stderr.write(`${e.stack}\n`);
            }
          }
          process.exitCode = 1;
          setImmediate(() => process.exit(1));
        },
      );
  };

  const program = withGlobals(new Command('hq'))
    .description('HyperQueue: a task runtime for HPC clusters')
    .version(VERSION, '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeErr: (text) => {
        if (json) {
          printJson({
            error: clapStyle(text)
              .replace(/^error: /, '')
              .trim(),
          });
        } else {
          process.stderr.write(clapStyle(text));
        }
      },
    });
  program.addCommand(serverCommand(run));
  program.addCommand(workerCommand(run));
  program.addCommand(jobCommand(run));
  program.addCommand(allocCommand(run));
  program.addCommand(taskCommand(run));
  program.addCommand(defineSubmit(new Command('submit'), run));
  program.addCommand(outputLogCommand(run));
  program.addCommand(journalCommand(run));
  program.addCommand(dashboardCommand(run));
  program.addCommand(docCommand(run));
  program.addCommand(generateCompletionCommand(run));
  program.addCommand(apiCommand(run), { hidden: true });
  // The seeds' forms (`hq jobs`, `hq progress 1`, `hq log my.log show`), kept out of the help.
  for (const cmd of [...jobShortcutCommands(run), outputLogCommand(run, 'log')]) {
    program.addCommand(cmd, { hidden: true });
  }
  for (const cmd of program.commands) {
    cmd.exitOverride();
    cmd.configureOutput(program.configureOutput());
    for (const sub of cmd.commands) {
      sub.exitOverride();
      sub.configureOutput(program.configureOutput());
    }
  }
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      const helpOrVersion =
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.help' ||
        e.code === 'commander.version';
      process.exit(helpOrVersion ? 0 : 1);
    }
    reportError(e, json);
    process.exit(1);
  }
}

main();
