/**
 * `hq generate-completion bash|zsh|fish`: a shell completion script generated from the commander
 * definitions of every command, so it never drifts from the real command line. Upstream's clap
 * generator prints a script for the shell (`bin/hq.rs` `generate_completion`); ours is written
 * here for bash, zsh and fish (upstream's clap also knows elvish and PowerShell).
 *
 * Each script has the same parts: a table of every command path (`hq job list`) with its
 * subcommands, its options and which options take a value; the values of options and arguments
 * that have fixed choices; and one function that walks the words already typed, as commander
 * parses them (an option's value is skipped, `--` ends the options), to find the command path
 * and what the word under the cursor is.
 */
import { Argument, Command } from 'commander';
import { VERSION } from '../common/version.js';
import { withGlobals } from './context.js';

/** One option of a command, as completion needs it. */
export interface CompletionOption {
  /** Its spellings, e.g. `['-h', '--help']`. */
  names: string[];
  /** Whether a value follows: `required` (`<X>`), `optional` (`[X]`) or `none`. */
  value: 'none' | 'required' | 'optional';
  /** The allowed values (empty: any value, files are offered). */
  choices: readonly string[];
  description: string;
}

/** One command of the tree: `path` starts with the program name. */
export interface CompletionCommand {
  path: string[];
  /** Other names that select this command in its parent. */
  aliases: string[];
  description: string;
  subcommands: CompletionCommand[];
  options: CompletionOption[];
  /** The allowed values of each positional argument, in order (empty: any value). */
  args: (readonly string[])[];
  /** Whether the last argument is variadic (its choices apply to every later word). */
  variadicLast: boolean;
}

/** The shells a script can be generated for. */
export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The visible part of `cmd` and its subcommands (hidden commands and options are left out). */
export function completionTree(cmd: Command, parentPath: string[] = []): CompletionCommand {
  const help = cmd.createHelp();
  const path = [...parentPath, cmd.name()];
  const visible = help.visibleCommands(cmd);
  const subcommands = visible.map((sub) => completionTree(sub, path));
  // commander's implicit `help [command]` takes the name of a sibling.
  const helpCommand = subcommands.find(
    (s, i) => s.path.at(-1) === 'help' && !cmd.commands.includes(visible[i]!),
  );
  if (helpCommand !== undefined) {
    helpCommand.args = [subcommands.filter((s) => s !== helpCommand).map((s) => s.path.at(-1)!)];
  }
  const options = help.visibleOptions(cmd).map((o): CompletionOption => ({
    names: [o.short, o.long].filter((n): n is string => n !== undefined),
    value: o.required ? 'required' : o.optional ? 'optional' : 'none',
    choices: o.argChoices ?? [],
    description: oneLine(o.description),
  }));
  const args = cmd.registeredArguments.map((a) => a.argChoices ?? []);
  return {
    path,
    aliases: cmd.aliases(),
    description: oneLine(cmd.description()),
    subcommands,
    options,
    args,
    variadicLast: cmd.registeredArguments.at(-1)?.variadic === true,
  };
}

function walk(node: CompletionCommand, visit: (node: CompletionCommand) => void): void {
  visit(node);
  for (const sub of node.subcommands) {
    walk(sub, visit);
  }
}

/** `text` as one single-quoted fish word (fish reads `\\'` and `\\\\` inside single quotes). */
function fishq(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** `text` as one single-quoted word of bash or zsh (a backslash in single quotes is literal). */
function shq(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * Words for bash's `compgen -W`, which splits and unquotes its list again: each character that
 * is not plain is backslash-escaped first, so a value with a quote or a space stays one word.
 */
function compgenWords(words: readonly string[]): string {
  return shq(words.map((w) => w.replace(/[^\w./:=,+@%-]/g, '\\$&')).join(' '));
}

interface ValueTable {
  /** `[command path, option name, values]`: the option takes one of these values. */
  options: [string, string, readonly string[]][];
  /** `[command path, argument index, values, index and above]`. */
  args: [string, number, readonly string[], boolean][];
}

function valueTable(root: CompletionCommand): ValueTable {
  const table: ValueTable = { options: [], args: [] };
  walk(root, (node) => {
    const key = node.path.join(' ');
    for (const o of node.options) {
      if (o.value !== 'none' && o.choices.length > 0) {
        for (const name of o.names) {
          table.options.push([key, name, o.choices]);
        }
      }
    }
    const last = node.args.length - 1;
    const variadicChoices = node.variadicLast && (node.args[last]?.length ?? 0) > 0;
    node.args.forEach((choices, i) => {
      // Before a variadic argument's "this index and above" row, the free arguments get
      // rows of their own, so that its wildcard pattern does not catch them.
      if (choices.length > 0 || (variadicChoices && i < last)) {
        table.args.push([key, i, choices, node.variadicLast && i === last]);
      }
    });
  });
  return table;
}

/**
 * The option rows of the value table, with a flag whose values are the same in every command
 * that has it (the global `--output-mode`) folded into one wildcard row.
 */
function optionValueRows(
  table: ValueTable,
): { path: string | null; name: string; values: readonly string[] }[] {
  const byName = new Map<string, [string, readonly string[]][]>();
  for (const [path, name, values] of table.options) {
    byName.set(name, [...(byName.get(name) ?? []), [path, values]]);
  }
  const rows: { path: string | null; name: string; values: readonly string[] }[] = [];
  for (const [name, entries] of byName) {
    const first = entries[0]![1].join(' ');
    if (entries.length > 1 && entries.every(([, v]) => v.join(' ') === first)) {
      rows.push({ path: null, name, values: entries[0]![1] });
    } else {
      rows.push(...entries.map(([path, values]) => ({ path, name, values })));
    }
  }
  return rows;
}

function valueOptionNames(node: CompletionCommand, value: 'required' | 'optional'): string[] {
  return node.options.filter((o) => o.value === value).flatMap((o) => o.names);
}

function subcommandNames(node: CompletionCommand): string[] {
  return node.subcommands.flatMap((s) => [s.path.at(-1)!, ...s.aliases]);
}

function aliasRows(root: CompletionCommand): [string, string, string][] {
  const rows: [string, string, string][] = [];
  walk(root, (node) => {
    for (const alias of node.aliases) {
      rows.push([node.path.slice(0, -1).join(' '), alias, node.path.at(-1)!]);
    }
  });
  return rows;
}

/** How bash or zsh writes a `case` arm's pattern and a list of words. */
interface CaseSyntax {
  arm: (pattern: string) => string;
  values: (words: readonly string[]) => string;
  /** The empty list. */
  none: string;
}

/**
 * The three lookups the bash and zsh scripts share: `_hq_option_values CMD OPTION` and
 * `_hq_arg_values CMD INDEX` set `_hq_vals`, `_hq_canonical CMD WORD` sets `_hq_word`.
 */
function lookupFunctions(root: CompletionCommand, syntax: CaseSyntax): string[] {
  const table = valueTable(root);
  const fn = (comment: string, name: string, subject: string, arms: string[], fallback: string) => [
    `# ${comment}`,
    `${name}() {`,
    `  case ${subject} in`,
    ...arms,
    `    ${syntax.arm('*')} ${fallback} ;;`,
    '  esac',
    '}',
    '',
  ];
  return [
    ...fn(
      'The values of option $2 of the command at path $1.',
      '_hq_option_values',
      '"$1 $2"',
      optionValueRows(table).map((row) => {
        const pattern =
          row.path === null ? `*${shq(` ${row.name}`)}` : shq(`${row.path} ${row.name}`);
        return `    ${syntax.arm(pattern)} _hq_vals=${syntax.values(row.values)} ;;`;
      }),
      `_hq_vals=${syntax.none}`,
    ),
    ...fn(
      'The values of positional argument $2 (from 0) of the command at path $1.',
      '_hq_arg_values',
      '"$1#$2"',
      table.args.map(([path, index, values, andAbove]) => {
        const pattern = andAbove ? `${shq(`${path}#`)}*` : shq(`${path}#${index}`);
        return `    ${syntax.arm(pattern)} _hq_vals=${syntax.values(values)} ;;`;
      }),
      `_hq_vals=${syntax.none}`,
    ),
    ...fn(
      'The name an alias stands for (in the command at path $1).',
      '_hq_canonical',
      '"$1#$2"',
      aliasRows(root).map(
        ([path, alias, name]) =>
          `    ${syntax.arm(shq(`${path}#${alias}`))} _hq_word=${shq(name)} ;;`,
      ),
      '_hq_word=$2',
    ),
  ];
}

const HEADER = (shell: CompletionShell, use: string): string =>
  `# ${shell} completion for hq ${VERSION}, generated by \`hq generate-completion ${shell}\`.\n# ${use}\n`;

/** The bash script: `source <(hq generate-completion bash)`. Needs bash 4 or newer. */
export function bashCompletion(root: CompletionCommand): string {
  const out: string[] = [
    HEADER(
      'bash',
      'Use: source <(hq generate-completion bash), or save it as ~/.local/share/bash-completion/completions/hq',
    ),
    '# The subcommands and options of the command at path $1, and its options that take a value.',
    '_hq_node() {',
    '  case "$1" in',
  ];
  walk(root, (node) => {
    const space = (names: string[]): string => shq(` ${names.join(' ')} `);
    out.push(
      `    ${shq(node.path.join(' '))})`,
      `      _hq_subs=${compgenWords(subcommandNames(node))}`,
      `      _hq_opts=${compgenWords(node.options.flatMap((o) => o.names))}`,
      `      _hq_req=${space(valueOptionNames(node, 'required'))}`,
      `      _hq_opt=${space(valueOptionNames(node, 'optional'))}`,
      '      ;;',
    );
  });
  out.push("    *) _hq_subs='' _hq_opts='' _hq_req=' ' _hq_opt=' ' ;;", '  esac', '}', '');
  out.push(...lookupFunctions(root, { arm: (p) => `${p})`, values: compgenWords, none: "''" }));
  out.push(
    `_hq() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=${shq(root.path.join(' '))} pending='' lastopt='' npos=0 i w
  local _hq_subs _hq_opts _hq_req _hq_opt _hq_vals _hq_word
  COMPREPLY=()
  _hq_node "$cmd"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    # bash splits --option=value at the '=' (COMP_WORDBREAKS): the value follows.
    [[ $w == = ]] && continue
    if [[ -n $pending ]]; then
      if [[ $pending == req || $w != -* ]]; then
        pending=''
        continue
      fi
      pending=''
    fi
    # After --, every word is the task's command line: complete file names.
    [[ $w == -- ]] && return 0
    if [[ $w == -* ]]; then
      if [[ $w != *=* ]]; then
        lastopt=$w
        if [[ $_hq_req == *" $w "* ]]; then
          pending=req
        elif [[ $_hq_opt == *" $w "* ]]; then
          pending=opt
        fi
      fi
      continue
    fi
    if [[ " $_hq_subs " == *" $w "* ]]; then
      _hq_canonical "$cmd" "$w"
      cmd="$cmd $_hq_word"
      npos=0
      _hq_node "$cmd"
    else
      npos=$((npos + 1))
    fi
  done
  if [[ $cur == --*=* ]]; then
    _hq_option_values "$cmd" "\${cur%%=*}"
    COMPREPLY=($(compgen -P "\${cur%%=*}=" -W "$_hq_vals" -- "\${cur#*=}"))
    return 0
  fi
  [[ $cur == = ]] && cur=''
  if [[ -n $pending ]] && [[ $pending == req || $cur != -* ]]; then
    _hq_option_values "$cmd" "$lastopt"
    COMPREPLY=($(compgen -W "$_hq_vals" -- "$cur"))
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$_hq_opts" -- "$cur"))
  else
    _hq_arg_values "$cmd" "$npos"
    COMPREPLY=($(compgen -W "$_hq_subs $_hq_vals" -- "$cur"))
  fi
  return 0
}
complete -o default -F _hq hq
`,
  );
  return out.join('\n');
}

/** `name:description` for zsh's `_describe` (a colon in the name is escaped). */
function described(name: string, description: string): string {
  return shq(`${name.replaceAll(':', '\\:')}:${description}`);
}

/** The zsh script: on `$fpath` as `_hq`, or sourced after `compinit`. */
export function zshCompletion(root: CompletionCommand): string {
  const out: string[] = [
    '#compdef hq',
    HEADER(
      'zsh',
      'Use: hq generate-completion zsh > ~/.zfunc/_hq with ~/.zfunc on $fpath, or source <(hq generate-completion zsh) after compinit',
    ),
    '# The subcommands and options of the command at path $1, and its options that take a value.',
    '_hq_node() {',
    '  case $1 in',
  ];
  const array = (items: string[]): string => `(${items.join(' ')})`;
  walk(root, (node) => {
    const subs = node.subcommands.flatMap((s) =>
      [s.path.at(-1)!, ...s.aliases].map((n) => described(n, s.description)),
    );
    const opts = node.options.flatMap((o) => o.names.map((n) => described(n, o.description)));
    out.push(
      `    (${shq(node.path.join(' '))})`,
      `      _hq_subs=${array(subs)}`,
      `      _hq_names=${array(subcommandNames(node).map(shq))}`,
      `      _hq_opts=${array(opts)}`,
      `      _hq_req=${array(valueOptionNames(node, 'required').map(shq))}`,
      `      _hq_opt=${array(valueOptionNames(node, 'optional').map(shq))}`,
      '      ;;',
    );
  });
  out.push(
    '    (*) _hq_subs=(); _hq_names=(); _hq_opts=(); _hq_req=(); _hq_opt=() ;;',
    '  esac',
    '}',
    '',
  );
  out.push(
    ...lookupFunctions(root, {
      arm: (p) => `(${p})`,
      values: (words) => array(words.map(shq)),
      none: '()',
    }),
  );
  out.push(
    `_hq() {
  local cur=\${words[CURRENT]} cmd=${shq(root.path.join(' '))} pending= lastopt= w _hq_word
  integer i npos=0 ret=1
  local -a _hq_subs _hq_names _hq_opts _hq_req _hq_opt _hq_vals
  _hq_node $cmd
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ -n $pending ]]; then
      if [[ $pending == req || $w != -* ]]; then
        pending=
        continue
      fi
      pending=
    fi
    # After --, every word is the task's command line: complete file names.
    if [[ $w == -- ]]; then
      _files
      return
    fi
    if [[ $w == -* ]]; then
      if [[ $w != *=* ]]; then
        lastopt=$w
        if (( \${_hq_req[(Ie)$w]} )); then
          pending=req
        elif (( \${_hq_opt[(Ie)$w]} )); then
          pending=opt
        fi
      fi
      continue
    fi
    if (( \${_hq_names[(Ie)$w]} )); then
      _hq_canonical $cmd $w
      cmd="$cmd $_hq_word"
      npos=0
      _hq_node $cmd
    else
      npos=$((npos + 1))
    fi
  done
  if [[ $cur == --*=* ]]; then
    _hq_option_values $cmd \${cur%%=*}
    compset -P '*='
    if (( $#_hq_vals )); then compadd -a _hq_vals; else _files; fi
    return
  fi
  if [[ -n $pending ]] && [[ $pending == req || $cur != -* ]]; then
    _hq_option_values $cmd $lastopt
    if (( $#_hq_vals )); then compadd -a _hq_vals; else _files; fi
    return
  fi
  if [[ $cur == -* ]]; then
    _describe -t options option _hq_opts
    return
  fi
  _hq_arg_values $cmd $npos
  if (( $#_hq_subs )); then _describe -t commands command _hq_subs && ret=0; fi
  if (( $#_hq_vals )); then compadd -a _hq_vals && ret=0; fi
  if (( ret )); then _files; fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _hq "$@"
else
  compdef _hq hq
fi
`,
  );
  return out.join('\n');
}

/** The fish script: `hq generate-completion fish > ~/.config/fish/completions/hq.fish`. */
export function fishCompletion(root: CompletionCommand): string {
  const out: string[] = [
    HEADER('fish', 'Use: hq generate-completion fish > ~/.config/fish/completions/hq.fish'),
    '# The subcommands of the command at path $cmd, and its options that take a value.',
    'function __hq_node --argument-names cmd',
    '    switch $cmd',
  ];
  const list = (items: string[]): string => items.map(fishq).join(' ');
  walk(root, (node) => {
    out.push(
      `        case ${fishq(node.path.join(' '))}`,
      `            set -g __hq_subs ${list(subcommandNames(node))}`,
      `            set -g __hq_req ${list(valueOptionNames(node, 'required'))}`,
      `            set -g __hq_opt ${list(valueOptionNames(node, 'optional'))}`,
    );
  });
  out.push(
    "        case '*'",
    '            set -g __hq_subs',
    '            set -g __hq_req',
    '            set -g __hq_opt',
    '    end',
    'end',
    '',
    '# The name an alias stands for (in the command at path $cmd).',
    'function __hq_canonical --argument-names cmd word',
    '    switch "$cmd#$word"',
  );
  for (const [path, alias, name] of aliasRows(root)) {
    out.push(`        case ${fishq(`${path}#${alias}`)}`, `            echo ${fishq(name)}`);
  }
  out.push(
    `        case '*'
            echo $word
    end
end

# Walks the words before the cursor: the command path, whether an option's value is due, how
# many arguments came, whether -- was seen.
function __hq_state
    set -l words (commandline -opc)
    set -e words[1]
    set -g __hq_cmd ${fishq(root.path.join(' '))}
    set -g __hq_pending ''
    set -g __hq_npos 0
    set -g __hq_rest 0
    __hq_node $__hq_cmd
    for w in $words
        if test -n "$__hq_pending"
            if test $__hq_pending = req; or not string match -q -- '-*' $w
                set __hq_pending ''
                continue
            end
            set __hq_pending ''
        end
        if test "$w" = --
            set __hq_rest 1
            return
        end
        if string match -q -- '-*' $w
            if not string match -q -- '*=*' $w
                if contains -- $w $__hq_req
                    set __hq_pending req
                else if contains -- $w $__hq_opt
                    set __hq_pending opt
                end
            end
            continue
        end
        if contains -- $w $__hq_subs
            set __hq_cmd "$__hq_cmd "(__hq_canonical $__hq_cmd $w)
            set __hq_npos 0
            __hq_node $__hq_cmd
        else
            set __hq_npos (math $__hq_npos + 1)
        end
    end
end

# The cursor is in command $cmd, before --: its options apply (fish completes their values).
function __hq_in --argument-names cmd
    __hq_state
    test $__hq_rest = 0 -a "$__hq_cmd" = "$cmd"
end

# As __hq_in, and no option's value is due: a subcommand or an argument goes here.
function __hq_at --argument-names cmd
    __hq_in $cmd; or return 1
    if test -n "$__hq_pending"
        test $__hq_pending = opt; and string match -q -- '-*' (commandline -ct)
        return
    end
    return 0
end

# As __hq_at, at positional argument $n (or any later one when $andabove is set).
function __hq_arg --argument-names cmd n andabove
    __hq_at $cmd; or return 1
    test $__hq_npos = $n; or begin
        test -n "$andabove"; and test $__hq_npos -ge $n
    end
end

complete -c hq -e`,
  );
  const table = valueTable(root);
  walk(root, (node) => {
    const key = fishq(node.path.join(' '));
    const at = fishq(`__hq_at ${key}`);
    for (const sub of node.subcommands) {
      for (const name of [sub.path.at(-1)!, ...sub.aliases]) {
        out.push(`complete -c hq -n ${at} -f -a ${fishq(name)} -d ${fishq(sub.description)}`);
      }
    }
    for (const o of node.options) {
      const flags = o.names.map((n) =>
        n.startsWith('--') ? `-l ${fishq(n.slice(2))}` : `-s ${fishq(n.slice(1))}`,
      );
      const value =
        o.choices.length > 0
          ? ` -x -a ${fishq(o.choices.join(' '))}`
          : o.value === 'required'
            ? ' -r'
            : '';
      out.push(
        `complete -c hq -n ${fishq(`__hq_in ${key}`)} ${flags.join(' ')}${value} -d ${fishq(o.description)}`,
      );
    }
  });
  for (const [path, index, values, andAbove] of table.args.filter(([, , v]) => v.length > 0)) {
    const condition = `__hq_arg ${fishq(path)} ${index}${andAbove ? ' 1' : ''}`;
    out.push(`complete -c hq -n ${fishq(condition)} -f -a ${fishq(values.join(' '))}`);
  }
  return `${out.join('\n')}\n`;
}

/** The completion script of `shell` for the program `root` (with every subcommand defined). */
export function completionScript(shell: CompletionShell, root: Command): string {
  const tree = completionTree(root);
  switch (shell) {
    case 'bash':
      return bashCompletion(tree);
    case 'zsh':
      return zshCompletion(tree);
    case 'fish':
      return fishCompletion(tree);
  }
}

/** `hq generate-completion <SHELL>`: prints the script for the program this command belongs to. */
export function generateCompletionCommand(
  run: (f: () => Promise<number> | number) => void,
): Command {
  return withGlobals(new Command('generate-completion'))
    .description('Generate a shell completion script')
    .addArgument(
      new Argument(
        '<SHELL>',
        "Shell's flavor for which the completion script should be generated",
      ).choices(COMPLETION_SHELLS),
    )
    .action((shell: CompletionShell, _o: unknown, cmd: Command) =>
      run(() => {
        let root = cmd;
        while (root.parent !== null) {
          root = root.parent;
        }
        process.stderr.write(`Generating completion file for ${shell}...\n`);
        process.stdout.write(completionScript(shell, root));
        return 0;
      }),
    );
}
