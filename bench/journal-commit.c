/* What a write-ahead journal would save against the per-file Maildir commit (docs/benchmarks.md: "A write-ahead
 * log would change that arithmetic"). N messages of 1.2 KB on THREADS threads, in DIR:
 *   MODE 0: the Maildir commit SlimMail does: unnamed file, write, fsync, link, directory fsync;
 *   MODE 1: a journal: each message appended to one preallocated file, one fdatasync per batch of whatever the
 *           threads appended meanwhile (group commit), then the Maildir file written and linked without fsync;
 *           a thread runs syncfs once a second, and once more at the end (the files' real durability).
 * Prints messages/s (without and with the final syncfs), the whole machine's CPU per message (/proc/stat, so the
 * kernel's writeback threads count) and the messages per fdatasync. Not what SlimMail does: its documented
 * Maildir delivery (docs/slimmail.md) is write, fsync, rename, directory fsync, then 250.
 * Usage: gcc -O2 -pthread -o journal bench/journal-commit.c && ./journal DIR N THREADS MODE  (a new DIR each run) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commit-bench.h"

static const char *dir;
static int per_thread, mode, journal;
static long journal_end, appended, synced, fdatasyncs;
static int syncing;
static volatile int done;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Appends a record and returns once an fdatasync that started after the append has finished. */
static void journal_commit(const char *buf, int len) {
  pthread_mutex_lock(&mu);
  long at = journal_end; journal_end += len; long mine = ++appended;
  pthread_mutex_unlock(&mu);
  if (pwrite(journal, buf, len, at) != len) { perror("pwrite journal"); exit(1); }
  pthread_mutex_lock(&mu);
  while (synced < mine) {
    if (!syncing) {
      syncing = 1; long target = appended;
      pthread_mutex_unlock(&mu);
      fdatasync(journal);
      pthread_mutex_lock(&mu);
      fdatasyncs++; synced = target; syncing = 0;
      pthread_cond_broadcast(&cv);
    } else {
      pthread_cond_wait(&cv, &mu);
    }
  }
  pthread_mutex_unlock(&mu);
}

static void *syncer(void *arg) {
  (void)arg;
  int d = open(dir, O_RDONLY | O_DIRECTORY);
  while (!done) { sleep(1); syncfs(d); }
  close(d);
  return NULL;
}

static void *run(void *arg) {
  long id = (long)arg;
  char buf[1200], proc[64], name[4096];
  memset(buf, 'x', sizeof buf);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < per_thread; i++) {
    if (mode == 1) journal_commit(buf, sizeof buf);
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) { perror("open O_TMPFILE"); exit(1); }
    if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf) { perror("pwrite"); exit(1); }
    if (mode == 0) fsync(fd);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(name, sizeof name, "%s/m%d.%ld.%d", dir, getpid(), id, i);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) != 0) { perror("linkat"); exit(1); }
    close(fd);
    if (mode == 0) fsync(dfd);
  }
  close(dfd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s DIR N THREADS MODE(0 per-file, 1 journal)\n", argv[0]); return 2; }
  dir = argv[1];
  int n = atoi(argv[2]), threads = thread_count(argv[3]);
  mode = atoi(argv[4]);
  per_thread = n / threads;
  n = per_thread * threads;
  if (mode == 1) {
    /* Preallocated with written zeros, so that an fdatasync of an append has no metadata to write. */
    char path[4096], zeros[1 << 16];
    snprintf(path, sizeof path, "%s/journal", dir);
    journal = open(path, O_RDWR | O_CREAT, 0600);
    memset(zeros, 0, sizeof zeros);
    for (long off = 0; off < (long)n * 1200 + (long)sizeof zeros; off += sizeof zeros)
      if (pwrite(journal, zeros, sizeof zeros, off) != sizeof zeros) { perror("preallocate"); return 1; }
    fsync(journal);
  }
  pthread_t s;
  long long c0 = busy_ticks();
  double start = now();
  if (mode == 1) pthread_create(&s, NULL, syncer, NULL);
  run_on_threads(threads, run);
  double acked = now() - start;
  if (mode == 1) { int d = open(dir, O_RDONLY | O_DIRECTORY); syncfs(d); close(d); done = 1; pthread_join(s, NULL); }
  double all = now() - start;
  long long c1 = busy_ticks();
  printf("mode %d, %d threads: %.0f messages/s (%.0f with the final syncfs), %.0f us of CPU per message, %.1f messages per fdatasync\n",
         mode, threads, n / acked, n / all, (c1 - c0) * 1e6 / sysconf(_SC_CLK_TCK) / n, fdatasyncs ? (double)n / fdatasyncs : 0.0);
  return 0;
}
