/**
 * `hq doc [TOPIC] [--open]`: where the documentation of a topic is. Upstream prints a link into
 * its web documentation (`client/commands/doc.rs`); ours prints the path of the page in this
 * project's `docs/` directory, found next to the running `hq`, and `--open` hands it to the
 * browser (`$BROWSER`, else `xdg-open`, or `open` on macOS).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Argument, Command, InvalidArgumentError } from 'commander';
import { HqError, errorMessage } from '../common/errors.js';
import { hqPath } from '../common/self.js';
import { withGlobals } from './context.js';

/** A documentation topic: its page in `docs/` and the other names upstream accepts for it. */
interface DocTopic {
  page: string;
  aliases: readonly string[];
}

/** Upstream's topics (`DocArea`), in its order, with its aliases. */
export const DOC_TOPICS: Readonly<Record<string, DocTopic>> = {
  job: { page: 'jobs.md', aliases: ['jobs', 'tasks'] },
  taskarray: { page: 'task-arrays.md', aliases: [] },
  resources: { page: 'resources.md', aliases: [] },
  worker: { page: 'workers.md', aliases: ['workers'] },
  autoalloc: { page: 'autoalloc.md', aliases: ['pbs', 'slurm'] },
  'python-api': { page: 'api.md', aliases: ['python'] },
  cheatsheet: { page: 'cheatsheet.md', aliases: [] },
  changelog: { page: 'changelog.md', aliases: [] },
  faq: { page: 'faq.md', aliases: [] },
};

/** The page of `hq doc` without a topic. */
export const DOC_INDEX_PAGE = 'index.md';

/**
 * The canonical name of a topic or of one of its aliases.
 * @throws InvalidArgumentError (commander's "Allowed choices are ..." error) for anything else.
 */
export function parseDocTopic(name: string): string {
  for (const [topic, { aliases }] of Object.entries(DOC_TOPICS)) {
    if (name === topic || aliases.includes(name)) {
      return topic;
    }
  }
  throw new InvalidArgumentError(`Allowed choices are ${Object.keys(DOC_TOPICS).join(', ')}.`);
}

/**
 * The directories where the documentation may be, for an `hq` at `program`: `docs/` beside the
 * directory of the program (`dist/hq` in a checkout or an installed package) or beside the
 * program itself (an unpacked release).
 */
export function docDirCandidates(program: string): string[] {
  let real = program;
  try {
    real = fs.realpathSync(program);
  } catch {
    // Not a file (a bare name): the directories are relative to where it was said to be.
  }
  const dir = path.dirname(path.resolve(real));
  return [path.join(dir, '..', 'docs'), path.join(dir, 'docs')];
}

/** The page's absolute path, or null when no candidate directory has it. */
export function findDocPage(page: string, dirs: readonly string[]): string | null {
  for (const dir of dirs) {
    const file = path.join(dir, page);
    if (fs.existsSync(file)) {
      return file;
    }
  }
  return null;
}

/** The commands that may open a file, in order: each entry of `$BROWSER`, then the system's. */
function openers(): string[][] {
  const browser = (process.env['BROWSER'] ?? '').split(':').filter((b) => b.trim() !== '');
  const system = process.platform === 'darwin' ? 'open' : 'xdg-open';
  return [...browser.map((b) => b.trim().split(/\s+/)), [system]];
}

/** Runs `command` on `target`; resolves with a reason when it could not be opened, else null. */
function tryOpen(command: string[], target: string): Promise<string | null> {
  const [program, ...args] = command;
  // $BROWSER's convention: `%s` stands for the target, else it is appended.
  const withTarget = args.some((a) => a.includes('%s'))
    ? args.map((a) => a.replaceAll('%s', target))
    : [...args, target];
  return new Promise((resolve) => {
    const child = spawn(program!, withTarget, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (e) => resolve(`${program}: ${errorMessage(e)}`));
    child.once('exit', (code, signal) =>
      resolve(
        code === 0 ? null : `${program} exited with ${signal ?? `code ${code ?? 'unknown'}`}`,
      ),
    );
  });
}

/** Opens `target` with the first opener that succeeds. @throws HqError when none does. */
export async function openInBrowser(target: string): Promise<void> {
  const failures: string[] = [];
  for (const command of openers()) {
    const failure = await tryOpen(command, target);
    if (failure === null) {
      return;
    }
    failures.push(failure);
  }
  throw new HqError('HQ_INTERNAL', `cannot open ${target}: ${failures.join('; ')}`);
}

async function doc(topic: string | undefined, open: boolean): Promise<number> {
  const page = topic === undefined ? DOC_INDEX_PAGE : DOC_TOPICS[topic]!.page;
  const dirs = docDirCandidates(hqPath());
  const file = findDocPage(page, dirs);
  if (file === null) {
    const where = `docs/${page} of the hyperqueue-ts source tree`;
    if (open) {
      throw new HqError(
        'HQ_NOT_FOUND',
        `the documentation is not installed next to this hq (looked in ${dirs.join(', ')}); the page is ${where}`,
      );
    }
    process.stderr.write(
      `The documentation is not installed next to this hq (looked in ${dirs.join(', ')}); the page is ${where}:\n`,
    );
    process.stdout.write(`docs/${page}\n`);
    return 0;
  }
  if (open) {
    await openInBrowser(file);
  } else {
    process.stdout.write(`${file}\n`);
  }
  return 0;
}

/** `hq doc [TOPIC] [--open]`. */
export function docCommand(run: (f: () => Promise<number> | number) => void): Command {
  return withGlobals(new Command('doc'))
    .description('Show where the documentation of a topic is')
    .addArgument(
      new Argument('[TOPIC]', 'The topic (without one: the index of the documentation)')
        .choices(Object.keys(DOC_TOPICS))
        .argParser(parseDocTopic),
    )
    .option('--open', 'Open the documentation in the default browser')
    .action((topic: string | undefined, opts: { open?: boolean }) =>
      run(() => doc(topic, opts.open === true)),
    );
}
