import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { Argument, Command, Option } from 'commander';
import {
  bashCompletion,
  completionTree,
  fishCompletion,
  zshCompletion,
  type CompletionCommand,
} from '../../src/cli/completion.js';

/** A small program with every shape completion has to handle. */
function program(): Command {
  const root = new Command('hq').option('--colors <COLORS>', 'Color policy');
  root.addCommand(
    new Command('job')
      .description('Jobs')
      .addCommand(
        new Command('list')
          .description('List jobs')
          .option('--all', 'Every job')
          .addOption(new Option('--filter <STATE>', 'Only these').choices(['waiting', 'failed'])),
      )
      .addCommand(new Command('wait').alias('w').argument('<SELECTOR>', 'Jobs')),
  );
  root.addCommand(
    new Command('doc')
      .addArgument(new Argument('[TOPIC]', 'Topic').choices(['job', "it's"]))
      .option('--open', 'Open it'),
  );
  root.addCommand(
    new Command('pick').addArgument(new Argument('<ITEMS...>', 'Items').choices(['a', 'b'])),
  );
  root.addCommand(
    new Command('pair')
      .argument('<NAME>', 'Name')
      .addArgument(new Argument('[ITEMS...]', 'Items').choices(['a', 'b'])),
  );
  root.addCommand(new Command('pin').option('--pin [MODE]', 'Pinning'));
  root.addCommand(new Command('secret'), { hidden: true });
  return root;
}

function child(node: CompletionCommand, name: string): CompletionCommand {
  const found = node.subcommands.find((s) => s.path.at(-1) === name);
  assert.ok(found, `${node.path.join(' ')} has ${name}`);
  return found;
}

void describe('completionTree', () => {
  const tree = completionTree(program());

  void it('lists visible subcommands with their paths, leaving hidden ones out', () => {
    assert.deepEqual(
      tree.subcommands.map((s) => s.path.join(' ')),
      ['hq job', 'hq doc', 'hq pick', 'hq pair', 'hq pin', 'hq help'],
    );
    assert.deepEqual(
      child(tree, 'job').subcommands.map((s) => s.path.at(-1)),
      ['list', 'wait', 'help'],
    );
  });

  void it('records options with their value kind and choices, the help option included', () => {
    const list = child(child(tree, 'job'), 'list');
    assert.deepEqual(
      list.options.map((o) => [o.names, o.value, o.choices]),
      [
        [['--all'], 'none', []],
        [['--filter'], 'required', ['waiting', 'failed']],
        [['-h', '--help'], 'none', []],
      ],
    );
    assert.equal(child(tree, 'pin').options[0]?.value, 'optional');
  });

  void it('records aliases, argument choices and a variadic last argument', () => {
    assert.deepEqual(child(child(tree, 'job'), 'wait').aliases, ['w']);
    assert.deepEqual(child(tree, 'doc').args, [['job', "it's"]]);
    assert.equal(child(tree, 'doc').variadicLast, false);
    assert.equal(child(tree, 'pick').variadicLast, true);
  });

  void it("offers the siblings' names to the implicit help command", () => {
    assert.deepEqual(child(tree, 'help').args, [['job', 'doc', 'pick', 'pair', 'pin']]);
  });
});

const HAS_BASH = spawnSync('bash', ['-c', 'true']).status === 0;

/** What the generated bash function offers for the words typed so far (the last one is under the cursor). */
function bashComplete(script: string, words: string[]): string[] {
  const quoted = words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(' ');
  const r = spawnSync(
    'bash',
    [
      '-c',
      `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _hq; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

void describe('bashCompletion', { skip: !HAS_BASH && 'no bash' }, () => {
  const script = bashCompletion(completionTree(program()));
  const cases: [string[], string[]][] = [
    [
      ['hq', ''],
      ['job', 'doc', 'pick', 'pair', 'pin', 'help'],
    ],
    [['hq', 'j'], ['job']],
    [
      ['hq', 'job', ''],
      ['list', 'wait', 'w', 'help'],
    ],
    [
      ['hq', 'job', 'list', '--'],
      ['--all', '--filter', '--help'],
    ],
    [
      ['hq', 'job', 'list', '--filter', ''],
      ['waiting', 'failed'],
    ],
    [['hq', 'job', 'list', '--filter', '=', 'f'], ['failed']],
    [['hq', 'job', 'list', '--filter=w'], ['--filter=waiting']],
    [['hq', '--colors', 'x', 'job', 'l'], ['list']],
    [
      ['hq', 'doc', ''],
      ['job', "it's"],
    ],
    [['hq', 'doc', 'job', ''], []],
    [
      ['hq', 'pick', 'a', ''],
      ['a', 'b'],
    ],
    [
      ['hq', 'pin', '--pin', '--'],
      ['--pin', '--help'],
    ],
    [
      ['hq', 'help', 'p'],
      ['pick', 'pair', 'pin'],
    ],
    [['hq', 'job', 'w', 'x', '--'], ['--help']],
  ];
  for (const [words, expected] of cases) {
    void it(`completes ${JSON.stringify(words.join(' '))}`, () => {
      assert.deepEqual(bashComplete(script, words), expected);
    });
  }

  void it('is valid bash', () => {
    assert.equal(spawnSync('bash', ['-n'], { input: script }).status, 0);
  });
});

void describe('zsh and fish scripts', () => {
  const tree = completionTree(program());

  void it('name every command path and quote odd values', () => {
    const zsh = zshCompletion(tree);
    assert.match(zsh, /^#compdef hq\n/);
    assert.ok(zsh.includes("('hq job list')"));
    assert.ok(zsh.includes(`_hq_vals=('job' 'it'\\''s')`));
    const fish = fishCompletion(tree);
    assert.ok(fish.includes("case 'hq job list'"));
    assert.ok(fish.includes(`-a 'job it\\'s'`));
    assert.ok(fish.includes("-l 'filter' -x -a 'waiting failed'"));
  });
});
