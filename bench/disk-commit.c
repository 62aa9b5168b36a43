/* The file system's cost of one durable Maildir commit, without any server: create an unnamed file in DIR
 * (O_TMPFILE), set its mode, write 1.2 KB, fsync it, link it into DIR, fsync DIR; N times, on THREADS threads.
 * Prints files/s and, per file, the time spent in each step (averaged over all threads).
 * Usage: bench/disk.sh [DIR] [N] [THREADS] (compiles this file; docs/benchmarks.md). */
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
static int per_thread;
static double t_create, t_fsync, t_link, t_dirfsync;
static pthread_mutex_t totals = PTHREAD_MUTEX_INITIALIZER;

static void *run(void *arg) {
  long id = (long)arg;
  char buf[1200], proc[64], name[4096];
  double c = 0, f = 0, l = 0, d = 0;
  memset(buf, 'x', sizeof buf);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) { perror(dir); exit(1); }
  for (int i = 0; i < per_thread; i++) {
    double a = now();
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) { perror("open O_TMPFILE"); exit(1); }
    fchmod(fd, 0600);
    if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf) { perror("pwrite"); exit(1); }
    double b = now();
    fsync(fd);
    double e = now();
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(name, sizeof name, "%s/m%d.%ld.%d", dir, getpid(), id, i);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) != 0) { perror("linkat"); exit(1); }
    close(fd);
    double g = now();
    fsync(dfd);
    double h = now();
    c += b - a; f += e - b; l += g - e; d += h - g;
  }
  close(dfd);
  pthread_mutex_lock(&totals);
  t_create += c; t_fsync += f; t_link += l; t_dirfsync += d;
  pthread_mutex_unlock(&totals);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s DIR N [THREADS]\n", argv[0]); return 2; }
  dir = argv[1];
  int n = atoi(argv[2]), threads = argc > 3 ? thread_count(argv[3]) : 1;
  per_thread = n / threads;
  n = per_thread * threads;
  double start = now();
  run_on_threads(threads, run);
  double elapsed = now() - start;
  printf("%d files on %d threads in %.2f s: %.0f files/s; per file, us: create+write %.0f, fsync %.0f, link %.0f, directory fsync %.0f\n",
         n, threads, elapsed, n / elapsed, t_create / n * 1e6, t_fsync / n * 1e6, t_link / n * 1e6, t_dirfsync / n * 1e6);
  return 0;
}
