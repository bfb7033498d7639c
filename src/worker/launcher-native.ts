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
#include <dirent.h>
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
/* A running child; its exit is reported once its output pipes are drained too. */
static struct { pid_t pid; char id[32]; int pipes; int exited; int status; } *kids; static size_t nkids, capkids;
/* Output pipes of children (streamed stdio): read end, owner pid, channel. */
static struct { int fd; pid_t pid; int channel; } *pipes; static size_t npipes, cappipes;
/* Written by a vfork child before it gives up: the parent reads them once vfork returns. */
static volatile int fail_errno; static const char *volatile fail_step;

static void put_bytes(const char *s, size_t n) {
  if (outlen + n > outcap) { outcap = (outlen + n) * 2 + 4096; out = realloc(out, outcap); if (!out) _exit(1); }
  memcpy(out + outlen, s, n); outlen += n;
}
static void put(const char *s) { put_bytes(s, strlen(s)); }
static size_t kid_index(pid_t pid) { for (size_t i = 0; i < nkids; i++) if (kids[i].pid == pid) return i; return (size_t)-1; }
static void report_exit(size_t i) {
  char line[96]; snprintf(line, sizeof line, "x %s %d\n", kids[i].id, kids[i].status); put(line);
  kids[i] = kids[--nkids];
}
static void kill_everything(void);
/* A failed write means the worker is gone (its end of the pipe closed before its death signal
 * arrived): the tasks go with it, as on that signal. */
static void flush_out(void) {
  size_t off = 0;
  while (off < outlen) { ssize_t w = write(1, out + off, outlen - off); if (w < 0) { if (errno == EINTR) continue; kill_everything(); _exit(0); } off += (size_t)w; }
  outlen = 0;
}
static void on_chld(int s) { (void)s; int e = errno; ssize_t r = write(sigpipe[1], "c", 1); (void)r; errno = e; }
/* The worker is gone (PR_SET_PDEATHSIG): everything the tasks started must go with it. */
static volatile sig_atomic_t orphaned;
static void on_parent_death(int s) { (void)s; orphaned = 1; int e = errno; ssize_t r = write(sigpipe[1], "d", 1); (void)r; errno = e; }

/*
 * Kills every task's process group, then every process left whose parent is this helper: the
 * helper is a child subreaper, so whatever a task started and left behind (background jobs,
 * setsid children, TERM-trapping scripts) was reparented here rather than to init. Killing one
 * reparents its own children here too; rounds go on until none is left (bounded).
 */
static void kill_everything(void) {
  for (size_t i = 0; i < nkids; i++) kill(-kids[i].pid, SIGKILL);
  pid_t self = getpid();
  for (int round = 0; round < 200; round++) {
    int found = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
      pid_t p = (pid_t)atoi(de->d_name);
      if (p <= 0) continue;
      char path[64], buf[512];
      snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t r = read(fd, buf, sizeof buf - 1); close(fd);
      if (r <= 0) continue;
      buf[r] = 0;
      char *rp = strrchr(buf, ')'); char state; int ppid;
      if (!rp || sscanf(rp + 2, "%c %d", &state, &ppid) != 2) continue;
      if (ppid == (int)self && state != 'Z') { kill(-p, SIGKILL); kill(p, SIGKILL); found = 1; }
    }
    if (d) closedir(d);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    if (!found) break;
    usleep(5000);
  }
}

static void reap(void) {
  int status; pid_t pid; char line[96];
  (void)line;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    size_t i = kid_index(pid);
    if (i == (size_t)-1) continue;
    kids[i].exited = 1; kids[i].status = status;
    if (kids[i].pipes == 0) report_exit(i);
  }
}

/* Reads what one output pipe has: "o <id> <channel> <n>" and n bytes, or at its end "c <id> <channel>". */
static void drain_pipe(size_t j) {
  static char data[65536]; char line[96];
  size_t i = kid_index(pipes[j].pid);
  ssize_t r = read(pipes[j].fd, data, sizeof data);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (r > 0) {
    if (i != (size_t)-1) { snprintf(line, sizeof line, "o %s %d %zd\n", kids[i].id, pipes[j].channel, r); put(line); put_bytes(data, (size_t)r); }
    return;
  }
  close(pipes[j].fd);
  if (i != (size_t)-1) {
    snprintf(line, sizeof line, "c %s %d\n", kids[i].id, pipes[j].channel); put(line);
    if (--kids[i].pipes == 0 && kids[i].exited) report_exit(i);
  }
  pipes[j] = pipes[--npipes];
}

/* The field value that asks for a pipe instead of a file (server paths are always absolute). */
static int is_pipe(const char *f) { return f[0] == '|' && f[1] == 0; }

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
  int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
  if ((is_pipe(o) && pipe2(po, O_CLOEXEC) < 0) || (is_pipe(e) && pipe2(pe, O_CLOEXEC) < 0)) {
    snprintf(line, sizeof line, "e %s %d stdout\n", id, errno); put(line);
    if (po[0] >= 0) { close(po[0]); close(po[1]); }
    free(argv); free(envp); return;
  }
  fail_step = NULL; fail_errno = 0;
  char **saved = environ;
  pid_t pid = vfork();
  if (pid == 0) {
    signal(SIGCHLD, SIG_DFL); signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL); signal(SIGPIPE, SIG_DFL);
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (chdir(cwd) < 0) { fail_errno = errno; fail_step = "cwd"; _exit(127); }
    if (open_to(in, O_RDONLY, 0) < 0) { fail_errno = errno; fail_step = "stdin"; _exit(127); }
    if (po[1] >= 0 ? dup2(po[1], 1) < 0 : open_to(o, O_WRONLY | O_CREAT | O_TRUNC, 1) < 0) { fail_errno = errno; fail_step = "stdout"; _exit(127); }
    if (pe[1] >= 0 ? dup2(pe[1], 2) < 0 : open_to(e, O_WRONLY | O_CREAT | O_TRUNC, 2) < 0) { fail_errno = errno; fail_step = "stderr"; _exit(127); }
    environ = envp; /* so that the PATH search uses the task's PATH */
    execvp(argv[0], argv);
    fail_errno = errno; fail_step = "exec"; _exit(127);
  }
  environ = saved;
  if (po[1] >= 0) close(po[1]);
  if (pe[1] >= 0) close(pe[1]);
  if (pid < 0 || fail_step) {
    if (po[0] >= 0) close(po[0]);
    if (pe[0] >= 0) close(pe[0]);
  }
  if (pid < 0) { snprintf(line, sizeof line, "e %s %d fork\n", id, errno); put(line); }
  else if (fail_step) {
    int st; while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    snprintf(line, sizeof line, "e %s %d %s\n", id, fail_errno, fail_step); put(line);
  } else {
    if (nkids == capkids) { capkids = capkids * 2 + 16; kids = realloc(kids, capkids * sizeof *kids); if (!kids) _exit(1); }
    kids[nkids].pid = pid; snprintf(kids[nkids].id, sizeof kids[nkids].id, "%s", id);
    kids[nkids].pipes = 0; kids[nkids].exited = 0; kids[nkids].status = 0;
    int fds[2] = { po[0], pe[0] };
    for (int c = 0; c < 2; c++) {
      if (fds[c] < 0) continue;
      if (npipes == cappipes) { cappipes = cappipes * 2 + 16; pipes = realloc(pipes, cappipes * sizeof *pipes); if (!pipes) _exit(1); }
      pipes[npipes].fd = fds[c]; pipes[npipes].pid = pid; pipes[npipes].channel = c; npipes++;
      kids[nkids].pipes++;
    }
    nkids++;
    snprintf(line, sizeof line, "s %s %d\n", id, (int)pid); put(line);
  }
  free(argv); free(envp);
}

int main(void) {
  pid_t worker = getppid();
  signal(SIGINT, SIG_IGN); signal(SIGTERM, SIG_IGN); signal(SIGPIPE, SIG_IGN);
  if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) < 0) return 1;
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_chld; sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  struct sigaction sd; memset(&sd, 0, sizeof sd); sd.sa_handler = on_parent_death;
  sigaction(SIGUSR1, &sd, NULL);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid() != worker) { kill_everything(); return 0; }
  fcntl(0, F_SETFD, FD_CLOEXEC); fcntl(1, F_SETFD, FD_CLOEXEC);
  size_t cap = 1 << 20, len = 0; char *buf = malloc(cap);
  if (!buf) return 1;
  struct pollfd *fds = NULL; size_t capfds = 0;
  for (;;) {
    if (capfds < npipes + 2) { capfds = (npipes + 2) * 2; fds = realloc(fds, capfds * sizeof *fds); if (!fds) return 1; }
    fds[0] = (struct pollfd){ 0, POLLIN, 0 }; fds[1] = (struct pollfd){ sigpipe[0], POLLIN, 0 };
    size_t watched = npipes;
    for (size_t j = 0; j < watched; j++) fds[2 + j] = (struct pollfd){ pipes[j].fd, POLLIN, 0 };
    int n = poll(fds, (nfds_t)(2 + watched), nkids ? 100 : -1);
    if (n < 0 && errno != EINTR) return 1;
    if (orphaned) { kill_everything(); return 0; }
    if (n > 0 && (fds[1].revents & POLLIN)) { char junk[256]; while (read(sigpipe[0], junk, sizeof junk) > 0) {} }
    /* Output first, then exits: a child's last output is sent before its exit. */
    for (size_t j = watched; j-- > 0;) if (n > 0 && (fds[2 + j].revents & (POLLIN | POLLHUP | POLLERR))) drain_pipe(j);
    reap();
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
      if (len == cap) { cap *= 2; buf = realloc(buf, cap); if (!buf) return 1; }
      ssize_t r = read(0, buf + len, cap - len);
      if (r == 0) { kill_everything(); flush_out(); return 0; }
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
  // The cache may sit in a home directory shared by nodes of other architectures or C
  // libraries: those get binaries of their own.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } })
    ?.header;
  const hash = createHash('sha256')
    .update(`${SOURCE}\0${process.arch}\0${header?.glibcVersionRuntime ?? 'unknown'}`)
    .digest('hex')
    .slice(0, 16);
  const dir = cacheDir();
  const binary = path.join(dir, `launcher-${hash}`);
  try {
    let ours = false;
    try {
      const st = fs.statSync(binary);
      // Only a file of ours that nobody else can have replaced.
      ours = st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
    } catch {
      // not compiled yet
    }
    if (!ours) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = `${binary}.${process.pid}.tmp`;
      execFileSync('cc', ['-O2', '-o', tmp, '-x', 'c', '-'], {
        input: SOURCE,
        stdio: ['pipe', 'ignore', 'pipe'],
        timeout: 60_000,
      });
      fs.chmodSync(tmp, 0o700);
      fs.renameSync(tmp, binary);
    }
    // It must also run here (a cache on a `noexec` mount would not): with no input it exits 0.
    execFileSync(binary, [], { input: '', stdio: ['pipe', 'ignore', 'ignore'], timeout: 10_000 });
    return binary;
  } catch (e) {
    log.debug(`no native task launcher (${errorMessage(e)}); using the Perl one`);
    return null;
  }
}
