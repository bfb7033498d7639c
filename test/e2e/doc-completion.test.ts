import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { HQ_BIN, HqEnv, ROOT, type CommandResult } from './harness.js';

/** Exit code 1, nothing on stdout, exactly one line on stderr, matching `message`. */
function assertOneLineError(r: CommandResult, message: RegExp): void {
  assert.equal(r.code, 1, `exit code of hq ${r.args.join(' ')}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, message);
}

function hasShell(shell: string): boolean {
  return spawnSync(shell, ['-c', 'exit 0']).status === 0;
}

/**
 * The lines `shell` prints, for the line being completed (`$LINE`), with `$FILE` set when given
 * (it must exit 0). Fish prints `candidate<TAB>description`: only the candidate is kept.
 */
function shellLines(shell: string, args: string[], line: string, file = ''): string[] {
  const r = spawnSync(shell, args, {
    encoding: 'utf8',
    cwd: env.dir,
    env: { ...process.env, LINE: line, FILE: file },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t')[0]!);
}

const TOPICS =
  'job, taskarray, resources, worker, autoalloc, python-api, cheatsheet, changelog, faq';

let env: HqEnv;

before(async () => {
  env = await HqEnv.create();
});

after(async () => {
  await env?.close();
});

/** `hq ...` without a server directory (neither command needs a server). */
function hq(args: string[], options: { expectFail?: boolean; env?: Record<string, string> } = {}) {
  return env.command(args, { serverDir: null, ...options });
}

void describe('hq doc', () => {
  void it("prints the absolute path of each topic's page, aliases included", async () => {
    const cases: [string[], string][] = [
      [[], 'index.md'],
      [['job'], 'jobs.md'],
      [['tasks'], 'jobs.md'],
      [['taskarray'], 'task-arrays.md'],
      [['resources'], 'resources.md'],
      [['workers'], 'workers.md'],
      [['slurm'], 'autoalloc.md'],
      [['python-api'], 'api.md'],
      [['cheatsheet'], 'cheatsheet.md'],
      [['changelog'], 'changelog.md'],
      [['faq'], 'faq.md'],
    ];
    for (const [args, page] of cases) {
      const r = await hq(['doc', ...args]);
      const expected = path.join(fs.realpathSync(ROOT), 'docs', page);
      assert.equal(r.stdout, `${expected}\n`, `hq doc ${args.join(' ')}`);
      assert.ok(fs.existsSync(expected));
    }
  });

  void it('refuses an unknown topic, listing the topics', async () => {
    const r = await hq(['doc', 'jobz'], { expectFail: true });
    assertOneLineError(
      r,
      new RegExp(
        `^error: command-argument value 'jobz' is invalid for argument 'TOPIC'\\. Allowed choices are ${TOPICS}\\.$`,
      ),
    );
  });

  void it('--open hands the page to $BROWSER', async () => {
    const record = env.path('opened.txt');
    const browser = env.path('browser.sh');
    fs.writeFileSync(browser, `#!/bin/sh\nprintf '%s\\n' "$@" > '${record}'\n`, { mode: 0o755 });
    const r = await hq(['doc', '--open', 'resources'], { env: { BROWSER: browser } });
    assert.equal(r.stdout, '');
    assert.equal(
      fs.readFileSync(record, 'utf8'),
      `${path.join(fs.realpathSync(ROOT), 'docs', 'resources.md')}\n`,
    );
  });

  void it('--open fails with one line when nothing can open the page', async () => {
    // A PATH with node only (the bundle starts through `env node`): no xdg-open, no open.
    const bin = env.path('node-only');
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = await hq(['doc', 'faq', '--open'], {
      expectFail: true,
      env: { PATH: bin, BROWSER: '/bin/false' },
    });
    assertOneLineError(r, /^Error: cannot open .*faq\.md: \/bin\/false exited with code 1; .*open/);
  });

  void it('says where the page is when no docs are installed next to hq', () => {
    const lone = env.path('lone', 'bin');
    fs.mkdirSync(lone, { recursive: true });
    fs.copyFileSync(HQ_BIN, path.join(lone, 'hq'));
    fs.chmodSync(path.join(lone, 'hq'), 0o755);
    const r = spawnSync(path.join(lone, 'hq'), ['doc', 'job'], {
      encoding: 'utf8',
      env: env.processEnv(),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'docs/jobs.md\n');
    assert.match(r.stderr, /not installed next to this hq .*docs\/jobs\.md of the hyperqueue-ts/);
    const open = spawnSync(path.join(lone, 'hq'), ['doc', 'job', '--open'], {
      encoding: 'utf8',
      env: env.processEnv(),
    });
    assert.equal(open.status, 1);
    assert.equal(open.stdout, '');
    assert.match(open.stderr, /^Error: the documentation is not installed next to this hq .*\n$/);
  });
});

void describe('hq generate-completion', () => {
  /**
   * Writes `hq generate-completion <shell>` into `name` in the test directory and checks that
   * the shell parses it (`-n`); returns its path.
   */
  async function generated(shell: string, name: string): Promise<string> {
    const r = await hq(['generate-completion', shell]);
    assert.ok(r.stdout.length > 0);
    const file = env.path(name);
    fs.writeFileSync(file, r.stdout);
    const check = spawnSync(shell, shell === 'fish' ? ['--no-config', '-n', file] : ['-n', file], {
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stderr);
    return file;
  }

  void it('refuses an unknown shell with one line', async () => {
    const r = await hq(['generate-completion', 'tcsh'], { expectFail: true });
    assertOneLineError(
      r,
      /^error: command-argument value 'tcsh' is invalid for argument 'SHELL'\. Allowed choices are bash, zsh, fish\.$/,
    );
  });

  /** What every shell's script must offer: `run` completes a line in that shell. */
  function assertCommonCompletions(run: (line: string) => string[]): void {
    assert.deepEqual(run('hq jo'), ['job', 'journal']);
    assert.ok(run('hq job ').includes('list'));
    assert.deepEqual(run('hq job list --al'), ['--all']);
  }

  before(async () => {
    if (hasShell('bash')) {
      await generated('bash', 'hq.bash');
    }
  });

  /** Sources the script in a real bash and runs the function `complete -p hq` registered. */
  function complete(line: string): string[] {
    const script = `
source ${JSON.stringify(env.path('hq.bash'))}
spec=$(complete -p hq) || exit 3
fn=\${spec#*-F }; fn=\${fn%% *}
read -ra COMP_WORDS <<< "$LINE"
[[ $LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
COMP_LINE=$LINE; COMP_POINT=\${#LINE}
"$fn" hq "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
    return shellLines('bash', ['--norc', '--noprofile', '-c', script], line);
  }

  void it(
    'bash: hq jo<TAB> offers job and journal',
    { skip: !hasShell('bash') && 'no bash' },
    () => {
      assert.deepEqual(complete('hq jo'), ['job', 'journal']);
    },
  );

  void it(
    'bash: subcommands, their options and option values',
    { skip: !hasShell('bash') && 'no bash' },
    () => {
      assertCommonCompletions(complete);
      assert.deepEqual(complete('hq worker start --on-server-lost '), ['stop', 'finish-running']);
      assert.deepEqual(complete('hq --output-mode json job li'), ['list']);
      assert.deepEqual(complete('hq doc py'), ['python-api']);
      assert.deepEqual(complete('hq generate-completion '), ['bash', 'zsh', 'fish']);
      // The hidden `api` command is not offered.
      assert.deepEqual(complete('hq a'), ['alloc']);
    },
  );

  void it(
    'zsh: a script that parses and completes',
    { skip: !hasShell('zsh') && 'no zsh' },
    async () => {
      const file = await generated('zsh', '_hq');
      assert.match(fs.readFileSync(file, 'utf8'), /^#compdef hq\n/);
      // Outside an interactive shell, compsys' functions are replaced by stubs that print the
      // candidates matching the word under the cursor (and succeed when there was one).
      const harness = `
compdef() { :; }
_describe() { local e r=1; for e in \${(P)\${@[-1]}}; do e=\${e%%:*}; [[ $e == $PREFIX* ]] && print -r -- $e && r=0; done; return r }
compadd() { local e r=1; for e in \${(P)2}; do [[ $e == $PREFIX* ]] && print -r -- $e && r=0; done; return r }
compset() { PREFIX=\${PREFIX#*=}; }
_files() { print -r -- '<files>'; }
source ${JSON.stringify(file)}
words=(\${=LINE}); [[ $LINE == *' ' ]] && words+=('')
CURRENT=$#words; PREFIX=\${words[CURRENT]}
_hq`;
      const run = (line: string): string[] => shellLines('zsh', ['-f', '-c', harness], line);
      assertCommonCompletions(run);
      assert.deepEqual(run('hq --output-mode=j'), ['json']);
      assert.deepEqual(run('hq submit -- ./x '), ['<files>']);
    },
  );

  void it(
    'fish: a script that parses and completes',
    { skip: !hasShell('fish') && 'no fish' },
    async () => {
      const file = await generated('fish', 'hq.fish');
      const run = (line: string): string[] =>
        shellLines('fish', ['--no-config', '-c', 'source $FILE; complete -C "$LINE"'], line, file);
      assertCommonCompletions(run);
      assert.deepEqual(run('hq worker start --manager '), ['detect', 'none', 'pbs', 'slurm']);
    },
  );
});
