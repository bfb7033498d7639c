/**
 * A fake batch system for the `hq alloc` e2e tests: small bash programs named
 * sbatch/scontrol/scancel and qsub/qstat/qdel in a temporary `bin` directory that is put first
 * on the PATH of the server (and of the clients and workers). They keep their state in files
 * next to them:
 * - `calls.log`: one line per call, tab-separated: role (server/worker/client), program, the
 *   working directory, then every argument;
 * - `counter`: the last job id handed out (sbatch prints `Submitted batch job <n>`, qsub prints
 *   `<n>.fakepbs`); each submitted script is copied to `script-<id>.sh`;
 * - `state-<id>`: what scontrol/qstat report for a job (default: pending/queued; `GONE`: the job
 *   is unknown to the batch system);
 * - `cancelled`: ids passed to scancel/qdel;
 * - `fail-submit` (its text goes to stderr, exit 1) and `fail-cancel`: switches for failures;
 * - `hold-submit`: sbatch/qsub write the id they hand out to `held` and answer only once the
 *   switch is gone (for what happens while a submission is under way).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { waitFor } from './harness.js';

/** Quick autoalloc timing for the server (the defaults are seconds to minutes). */
export const QUICK_AUTOALLOC = {
  HQ_AUTOALLOC_SCHEDULE_TICK_INTERVAL_MS: '100',
  HQ_AUTOALLOC_MAX_SCHEDULE_DELAY_MS: '100',
  HQ_AUTOALLOC_REFRESH_INTERVAL_MS: '100',
};

const PRELUDE = `#!/bin/bash
# Fake batch-system program for the hq autoalloc e2e tests; state lives next to this file.
dir=$(dirname "$(readlink -f "$0")")
line="\${FAKE_ROLE:-server}"$'\\t'"$(basename "$0")"$'\\t'"$(pwd -P)"
for arg in "$@"; do line+=$'\\t'"$arg"; done
printf '%s\\n' "$line" >> "$dir/calls.log"
`;

function submitter(idFormat: string, output: string): string {
  return `${PRELUDE}
if [ -f "$dir/fail-submit" ]; then
  cat "$dir/fail-submit" >&2
  exit 1
fi
exec 9>>"$dir/counter.lock"
flock 9
n=$(( $(cat "$dir/counter" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/counter"
exec 9>&-
id="${idFormat}"
cp "$1" "$dir/script-$id.sh"
if [ -f "$dir/hold-submit" ]; then
  # Answer only once the test removes the switch (bounded: 10 s at most).
  echo "$id" > "$dir/held"
  for _ in $(seq 400); do [ -f "$dir/hold-submit" ] || break; sleep 0.025; done
fi
echo "${output}"
`;
}

const CANCELLER = `${PRELUDE}
if [ -f "$dir/fail-cancel" ]; then
  echo "fake: refusing to cancel job $1" >&2
  exit 1
fi
printf '%s\\n' "$1" >> "$dir/cancelled"
`;

const FAKE_PROGRAMS: Record<string, string> = {
  sbatch: submitter('$n', 'Submitted batch job $id'),
  qsub: submitter('$n.fakepbs', '$id'),
  scancel: CANCELLER,
  qdel: CANCELLER,
  // `scontrol show job <id>`
  scontrol: `${PRELUDE}
id=$3
state=JobState=PENDING
[ -f "$dir/state-$id" ] && state=$(cat "$dir/state-$id")
if [ "$state" = GONE ]; then
  echo "slurm_load_jobs error: Invalid job id specified" >&2
  exit 1
fi
printf 'JobId=%s JobName=fake-%s\\n   UserId=tester(1000) GroupId=tester(1000)\\n   %s\\n' "$id" "$id" "$state"
`,
  // `qstat -f <id> [-f <id>...] -F json [-x]`
  qstat: `${PRELUDE}
ids=()
while [ $# -gt 0 ]; do
  if [ "$1" = -f ]; then ids+=("$2"); shift; fi
  shift
done
out='{"pbs_version":"fake","Jobs":{'
sep=''
for id in "\${ids[@]}"; do
  state='{"job_state":"Q"}'
  [ -f "$dir/state-$id" ] && state=$(cat "$dir/state-$id")
  [ "$state" = GONE ] && continue
  out+="$sep\\"$id\\":$state"
  sep=','
done
printf '%s}}\\n' "$out"
`,
};

export interface Call {
  role: string;
  program: string;
  cwd: string;
  args: string[];
}

export class FakeBatchSystem {
  readonly bin: string;

  constructor(dir: string) {
    this.bin = dir;
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(FAKE_PROGRAMS)) {
      fs.writeFileSync(path.join(dir, name), text, { mode: 0o755 });
    }
  }

  /** PATH with the fake programs first. */
  get PATH(): string {
    return `${this.bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
  }

  env(role: string, extra: Record<string, string> = {}): Record<string, string> {
    return { PATH: this.PATH, FAKE_ROLE: role, ...extra };
  }

  private file(name: string): string {
    return path.join(this.bin, name);
  }

  calls(programs: string[] = [], role = 'server'): Call[] {
    let text = '';
    try {
      text = fs.readFileSync(this.file('calls.log'), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [r, program, cwd, ...args] = l.split('\t');
        return { role: r!, program: program!, cwd: cwd!, args };
      })
      .filter((c) => c.role === role && (programs.length === 0 || programs.includes(c.program)));
  }

  submissions(): Call[] {
    return this.calls(['sbatch', 'qsub']);
  }

  statusPolls(): number {
    return this.calls(['scontrol', 'qstat']).length;
  }

  /** Waits until the server has asked for allocation statuses `n` more times. */
  async waitForPolls(n: number): Promise<void> {
    const target = this.statusPolls() + n;
    await waitFor(() => this.statusPolls() >= target, {
      message: `${n} more status polls of the fake batch system`,
    });
  }

  /** The script the fake received for job `id` (a copy: the original may be gone). */
  script(id: string): string {
    return fs.readFileSync(this.file(`script-${id}.sh`), 'utf8');
  }

  /** What scontrol (the text after JobId) or qstat (the job's JSON) says about job `id`. */
  setState(id: string, state: string): void {
    fs.writeFileSync(this.file(`state-${id}`), state);
  }

  cancelled(): string[] {
    try {
      return fs.readFileSync(this.file('cancelled'), 'utf8').split('\n').filter(Boolean).sort();
    } catch {
      return [];
    }
  }

  failSubmissions(message: string | null): void {
    if (message === null) {
      fs.rmSync(this.file('fail-submit'), { force: true });
    } else {
      fs.writeFileSync(this.file('fail-submit'), `${message}\n`);
    }
  }

  /** Makes sbatch/qsub wait before answering; returns a function that lets them answer. */
  holdSubmissions(): () => void {
    fs.rmSync(this.file('held'), { force: true });
    fs.writeFileSync(this.file('hold-submit'), '');
    return () => fs.rmSync(this.file('hold-submit'), { force: true });
  }

  /** The id of the submission being held, once there is one. */
  async waitForHeld(): Promise<string> {
    return waitFor(
      () => {
        try {
          return fs.readFileSync(this.file('held'), 'utf8').trim();
        } catch {
          return '';
        }
      },
      { message: 'a held submission' },
    );
  }

  failCancels(on: boolean): void {
    if (on) {
      fs.writeFileSync(this.file('fail-cancel'), '');
    } else {
      fs.rmSync(this.file('fail-cancel'), { force: true });
    }
  }
}
