/* Commit designs for a Maildir message (docs/benchmarks.md, "Commit designs measured in C"). N messages of 1.2 KB
 * on THREADS threads, named into DIR. Modes 0-3 and 5-7 create each message unnamed (O_TMPFILE in DIR) and link it:
 *   MODE 0: file fsync, link, directory fsync, each thread on its own;
 *   MODE 1: file fsync, link; the directory fsync shared: one at a time, covering every link made before it
 *           started (SlimMail until 2026-12-06: the link count the link sets is not made durable by either fsync
 *           on a file system without a journal);
 *   MODE 2: both steps by a shared syncfs of the whole file system (one at a time, as above);
 *   MODE 3: the file step by a shared syncfs, the directory step by a shared directory fsync;
 *   MODE 4: created with a name in DIR.tmp (which must exist), file fsync, rename into DIR, shared directory fsync
 *           (SlimMail since 2026-12-06, the sequence docs/slimmail.md promises);
 *   MODE 5: link first, then the file fsync and the shared directory fsync (visible before its bytes are durable);
 *   MODE 6: file fsync, link, the file fsync'd again (writes the new link count), shared directory fsync;
 *   MODE 7: file fsync, link, and a shared syncfs as the directory step (writes every dirty inode);
 *   MODE 8: as mode 4, each thread creating in DIR.tmp/N (N = thread % 16, made by the program): on ext4 without a
 *           journal the fsync of a new file also writes its directory, which mode 4's threads all share
 *           (SlimMail's staging directories, tmp/.slimmail-N);
 *   MODE 9: as mode 8, but each thread takes its files from a pool it refills 16 at a time (create 16, fsync each:
 *           the first fsync writes the staging directory, the rest find it clean), so that a message's own fsync
 *           no longer writes a directory (the parent is written only at a new entry's first fsync). The pool's
 *           creation is timed with the messages.
 *   MODE 10: as mode 8, but a directory fsync does not start until every message that was in its file fsync when
 *           the batch opened has joined it (larger batches: fewer directory fsyncs per message, each message
 *           waiting at most for one file fsync of another).
 * Prints files/s, the whole machine's CPU per message (/proc/stat) and messages per shared call.
 * Usage: gcc -O2 -pthread -o group bench/group-sync.c && mkdir D D.tmp && ./group D N THREADS MODE  (new D each run) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "commit-bench.h"

/* A call that many threads may need at once: each waits for one that started after it asked. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long asked, covered, calls;
  int running;
} shared_call;

static const char *dir;
static int per_thread, mode, dirfd_;
static shared_call file_step = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
static shared_call directory_step = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static void share(shared_call *c, int use_syncfs) {
  pthread_mutex_lock(&c->mu);
  long mine = ++c->asked;
  while (c->covered < mine) {
    if (!c->running) {
      c->running = 1;
      long target = c->asked;
      pthread_mutex_unlock(&c->mu);
      if (use_syncfs) syncfs(dirfd_); else fsync(dirfd_);
      pthread_mutex_lock(&c->mu);
      c->calls++;
      c->covered = target;
      c->running = 0;
      pthread_cond_broadcast(&c->cv);
    } else {
      pthread_cond_wait(&c->cv, &c->mu);
    }
  }
  pthread_mutex_unlock(&c->mu);
}

/* Mode 10: the directory step waits for the messages whose file step was running when its batch opened. */
static group_commit waiting = GROUP_COMMIT_INIT;

#define POOL 16

/* Mode 9: the next file of this thread's pool, made 16 at a time and fsync'd once each while still empty. */
static int pooled(long id, int i, char *temporary, size_t size) {
  static __thread int fds[POOL], left;
  if (left == 0) {
    for (int k = 0; k < POOL; k++) {
      snprintf(temporary, size, "%s.tmp/%ld/m%d.%ld.%d", dir, id % 16, getpid(), id, i + k);
      if ((fds[k] = open(temporary, O_CREAT | O_EXCL | O_RDWR, 0600)) < 0) { perror(temporary); exit(1); }
    }
    for (int k = 0; k < POOL; k++) fsync(fds[k]);
    left = POOL;
  }
  /* Refilled at message i, file k of the pool is named i + k: message i + k takes it. */
  snprintf(temporary, size, "%s.tmp/%ld/m%d.%ld.%d", dir, id % 16, getpid(), id, i);
  return fds[POOL - left--];
}

static void *run(void *arg) {
  long id = (long)arg;
  char buf[1200], proc[64], name[4096], temporary[4096];
  memset(buf, 'x', sizeof buf);
  int own_dirfd = open(dir, O_RDONLY | O_DIRECTORY);
  int named = mode == 4 || mode == 8 || mode == 9 || mode == 10;
  for (int i = 0; i < per_thread; i++) {
    snprintf(name, sizeof name, "%s/m%d.%ld.%d", dir, getpid(), id, i);
    if (mode == 8 || mode == 10) snprintf(temporary, sizeof temporary, "%s.tmp/%ld/m%d.%ld.%d", dir, id % 16, getpid(), id, i);
    else snprintf(temporary, sizeof temporary, "%s.tmp/m%d.%ld.%d", dir, getpid(), id, i);
    int fd = mode == 9 ? pooled(id, i, temporary, sizeof temporary)
        : named ? open(temporary, O_CREAT | O_EXCL | O_RDWR, 0600) : open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) { perror(named ? temporary : "open O_TMPFILE"); exit(1); }
    if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf) { perror("pwrite"); exit(1); }
    long ticket = mode == 10 ? group_announce(&waiting) : 0;
    if (mode == 2 || mode == 3) share(&file_step, 1); else if (mode != 5) fsync(fd);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (named ? rename(temporary, name) != 0 : linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) != 0) {
      perror(name);
      exit(1);
    }
    if (mode == 5 || mode == 6) fsync(fd);
    close(fd);
    if (mode == 0) fsync(own_dirfd);
    else if (mode == 10) group_join(&waiting, ticket, dirfd_);
    else share(&directory_step, mode == 2 || mode == 7);
  }
  close(own_dirfd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s DIR N THREADS MODE(0-10)\n", argv[0]); return 2; }
  dir = argv[1];
  int n = atoi(argv[2]), threads = thread_count(argv[3]);
  mode = atoi(argv[4]);
  per_thread = n / threads;
  n = per_thread * threads;
  if (mode == 8 || mode == 9 || mode == 10) {
    char sub[4096];
    for (int k = 0; k < 16; k++) { snprintf(sub, sizeof sub, "%s.tmp/%d", dir, k); mkdir(sub, 0700); }
  }
  dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
  if (dirfd_ < 0) { perror(dir); return 1; }
  long long c0 = busy_ticks();
  double start = now();
  run_on_threads(threads, run);
  double elapsed = now() - start;
  long long c1 = busy_ticks();
  printf("mode %d, %d threads: %.0f files/s, %.0f us of CPU per message; messages per shared call: file step %.1f, directory step %.1f\n",
         mode, threads, n / elapsed, (c1 - c0) * 1e6 / sysconf(_SC_CLK_TCK) / n,
         file_step.calls ? (double)n / file_step.calls : 0.0,
         directory_step.calls ? (double)n / directory_step.calls : waiting.calls ? (double)n / waiting.calls : 0.0);
  return 0;
}
