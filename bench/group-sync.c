/* Group commit with syncfs(2) instead of a file fsync per message (docs/benchmarks.md, "Commit designs measured in
 * C"). N messages of 1.2 KB on THREADS threads, in DIR; each message is created unnamed (O_TMPFILE), written, made
 * durable, linked into DIR, and the link made durable:
 *   MODE 0: file fsync, directory fsync, each thread on its own;
 *   MODE 1: file fsync; the directory fsync shared: one at a time, covering every link made before it started
 *           (what SlimMail does);
 *   MODE 2: both steps by a shared syncfs of the whole file system (one at a time, as above);
 *   MODE 3: the file step by a shared syncfs, the directory step by a shared directory fsync.
 * Prints files/s, the whole machine's CPU per message (/proc/stat) and messages per shared call.
 * Usage: gcc -O2 -pthread -o group bench/group-sync.c && ./group DIR N THREADS MODE  (a new DIR each run) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commit-clock.h"

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

static void *run(void *arg) {
  long id = (long)arg;
  char buf[1200], proc[64], name[4096];
  memset(buf, 'x', sizeof buf);
  int own_dirfd = open(dir, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < per_thread; i++) {
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) { perror("open O_TMPFILE"); exit(1); }
    if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf) { perror("pwrite"); exit(1); }
    if (mode <= 1) fsync(fd); else share(&file_step, 1);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(name, sizeof name, "%s/m%d.%ld.%d", dir, getpid(), id, i);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) != 0) { perror("linkat"); exit(1); }
    close(fd);
    if (mode == 0) fsync(own_dirfd); else share(&directory_step, mode == 2);
  }
  close(own_dirfd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s DIR N THREADS MODE(0-3)\n", argv[0]); return 2; }
  dir = argv[1];
  int n = atoi(argv[2]), threads = atoi(argv[3]);
  mode = atoi(argv[4]);
  if (threads < 1 || threads > 256) { fprintf(stderr, "THREADS: 1..256\n"); return 2; }
  per_thread = n / threads;
  n = per_thread * threads;
  dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
  if (dirfd_ < 0) { perror(dir); return 1; }
  pthread_t t[256];
  long long c0 = busy_ticks();
  double start = now();
  for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, (void *)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double elapsed = now() - start;
  long long c1 = busy_ticks();
  printf("mode %d, %d threads: %.0f files/s, %.0f us of CPU per message; messages per shared call: file step %.1f, directory step %.1f\n",
         mode, threads, n / elapsed, (c1 - c0) * 1e6 / sysconf(_SC_CLK_TCK) / n,
         file_step.calls ? (double)n / file_step.calls : 0.0, directory_step.calls ? (double)n / directory_step.calls : 0.0);
  return 0;
}
