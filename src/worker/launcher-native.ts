/**
 * The launcher helper in C, compiled on the worker's machine the first time it is needed (when
 * a C compiler is there) and cached by content hash. It speaks the same protocol as the Perl
 * helper (see launcher.ts), but starts children with vfork: no copy of the helper's memory and
 * no interpreter work between fork and exec, which is most of what a task start costs.
 *
 * Where no compiler is found, or compiling fails, the worker uses the Perl helper instead.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';

const log = logger('hq::worker');

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int sigpipe[2];
static char *out; static size_t outlen, outcap;
static struct { pid_t pid; char id[32]; } *kids; static size_t nkids, capkids;
/* Written by a vfork child before it gives up: the parent reads them once vfork returns. */
static volatile int fail_errno; static const char *volatile fail_step;

static void put(const char *s) {
  size_t n = strlen(s);
  if (outlen + n > outcap) { outcap = (outlen + n) * 2 + 4096; out = realloc(out, outcap); if (!out) _exit(1); }
  memcpy(out + outlen, s, n); outlen += n;
}
static void flush_out(void) {
  size_t off = 0;
  while (off < outlen) { ssize_t w = write(1, out + off, outlen - off); if (w < 0) { if (errno == EINTR) continue; _exit(0); } off += (size_t)w; }
  outlen = 0;
}
static void on_chld(int s) { (void)s; int e = errno; ssize_t r = write(sigpipe[1], "c", 1); (void)r; errno = e; }

static void reap(void) {
  int status; pid_t pid; char line[96];
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < nkids; i++) {
      if (kids[i].pid == pid) {
        snprintf(line, sizeof line, "x %s %d\n", kids[i].id, status); put(line);
        kids[i] = kids[--nkids]; break;
      }
    }
  }
}

static int open_to(const char *file, int flags, int fd) {
  int f = open(*file ? file : "/dev/null", flags, 0666);
  if (f < 0) return -1;
  if (f != fd) { if (dup2(f, fd) < 0) return -1; close(f); }
  return 0;
}

/* One record: id, cwd, stdin, stdout, stderr, argc, args..., env... (NUL-separated). */
static void launch(char *rec, size_t len) {
  char *fields[4096]; size_t nf = 0; char *p = rec, *end = rec + len;
  while (p <= end && nf < 4095) { fields[nf++] = p; char *z = memchr(p, 0, (size_t)(end - p)); if (!z) break; p = z + 1; }
  if (nf < 7) return;
  char *id = fields[0], *cwd = fields[1], *in = fields[2], *o = fields[3], *e = fields[4];
  long argc = strtol(fields[5], NULL, 10);
  if (argc < 1 || (size_t)argc + 6 > nf) return;
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  char **envp = calloc(nf - 6 - (size_t)argc + 1, sizeof *envp);
  if (!argv || !envp) _exit(1);
  for (long i = 0; i < argc; i++) argv[i] = fields[6 + i];
  size_t ne = 0;
  for (size_t i = 6 + (size_t)argc; i < nf; i++) if (strchr(fields[i], '=')) envp[ne++] = fields[i];
  char line[96];
  fail_step = NULL; fail_errno = 0;
  char **saved = environ;
  pid_t pid = vfork();
  if (pid == 0) {
    signal(SIGCHLD, SIG_DFL); signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL);
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (chdir(cwd) < 0) { fail_errno = errno; fail_step = "cwd"; _exit(127); }
    if (open_to(in, O_RDONLY, 0) < 0) { fail_errno = errno; fail_step = "stdin"; _exit(127); }
    if (open_to(o, O_WRONLY | O_CREAT | O_TRUNC, 1) < 0) { fail_errno = errno; fail_step = "stdout"; _exit(127); }
    if (open_to(e, O_WRONLY | O_CREAT | O_TRUNC, 2) < 0) { fail_errno = errno; fail_step = "stderr"; _exit(127); }
    environ = envp; /* so that the PATH search uses the task's PATH */
    execvp(argv[0], argv);
    fail_errno = errno; fail_step = "exec"; _exit(127);
  }
  environ = saved;
  if (pid < 0) { snprintf(line, sizeof line, "e %s %d fork\n", id, errno); put(line); }
  else if (fail_step) {
    int st; while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    snprintf(line, sizeof line, "e %s %d %s\n", id, fail_errno, fail_step); put(line);
  } else {
    if (nkids == capkids) { capkids = capkids * 2 + 16; kids = realloc(kids, capkids * sizeof *kids); if (!kids) _exit(1); }
    kids[nkids].pid = pid; snprintf(kids[nkids].id, sizeof kids[nkids].id, "%s", id); nkids++;
    snprintf(line, sizeof line, "s %s %d\n", id, (int)pid); put(line);
  }
  free(argv); free(envp);
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_IGN); signal(SIGTERM, SIG_IGN); signal(SIGPIPE, SIG_IGN);
  if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) < 0) return 1;
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_chld; sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  fcntl(0, F_SETFD, FD_CLOEXEC); fcntl(1, F_SETFD, FD_CLOEXEC);
  size_t cap = 1 << 20, len = 0; char *buf = malloc(cap);
  if (!buf) return 1;
  for (;;) {
    struct pollfd fds[2] = { { 0, POLLIN, 0 }, { sigpipe[0], POLLIN, 0 } };
    int n = poll(fds, 2, nkids ? 100 : -1);
    if (n < 0 && errno != EINTR) return 1;
    if (n > 0 && (fds[1].revents & POLLIN)) { char junk[256]; while (read(sigpipe[0], junk, sizeof junk) > 0) {} }
    reap();
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
      if (len == cap) { cap *= 2; buf = realloc(buf, cap); if (!buf) return 1; }
      ssize_t r = read(0, buf + len, cap - len);
      if (r == 0) { flush_out(); return 0; }
      if (r > 0) {
        len += (size_t)r;
        size_t off = 0;
        for (;;) {
          char *nl = memchr(buf + off, '\n', len - off);
          if (!nl) break;
          size_t rl = (size_t)strtoul(buf + off, NULL, 10);
          size_t start = (size_t)(nl - buf) + 1;
          if (len - start < rl) { if (rl + (start - off) > cap) { cap = rl + (start - off) + 4096; buf = realloc(buf, cap); if (!buf) return 1; } break; }
          char saved = buf[start + rl]; buf[start + rl] = 0;
          launch(buf + start, rl);
          buf[start + rl] = saved;
          off = start + rl;
        }
        memmove(buf, buf + off, len - off); len -= off;
      }
    }
    flush_out();
  }
}
`;

function cacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'hq');
}

/**
 * The path of the compiled helper, compiling it first if needed; null when there is no
 * compiler or it fails (the caller then uses the Perl helper).
 */
export function nativeLauncherPath(): string | null {
  if (process.platform !== 'linux') {
    return null;
  }
  const hash = createHash('sha256').update(SOURCE).digest('hex').slice(0, 16);
  const dir = cacheDir();
  const binary = path.join(dir, `launcher-${hash}`);
  try {
    const st = fs.statSync(binary);
    // Only a file of ours that nobody else can have replaced.
    if (st.uid === process.getuid?.() && (st.mode & 0o022) === 0) {
      return binary;
    }
  } catch {
    // not compiled yet
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${binary}.${process.pid}.tmp`;
    execFileSync('cc', ['-O2', '-o', tmp, '-x', 'c', '-'], {
      input: SOURCE,
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout: 60_000,
    });
    fs.chmodSync(tmp, 0o700);
    fs.renameSync(tmp, binary);
    return binary;
  } catch (e) {
    log.debug(`no native task launcher (${errorMessage(e)}); using the Perl one`);
    return null;
  }
}
