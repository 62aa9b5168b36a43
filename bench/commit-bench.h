/* What the C commit experiments (disk-commit.c, journal-commit.c, group-sync.c, uring-commit.c) share: a monotonic
 * clock, the whole machine's busy CPU time from /proc/stat (so the kernel's writeback and io-wq threads count), and
 * the running of one loop on THREADS threads. */
#ifndef COMMIT_BENCH_H
#define COMMIT_BENCH_H
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

/* user + nice + system + irq + softirq, in clock ticks (sysconf(_SC_CLK_TCK) per second). */
static inline long long busy_ticks(void) {
  long long u, ni, s, i, w, q, sq;
  FILE *f = fopen("/proc/stat", "r");
  if (!f || fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld", &u, &ni, &s, &i, &w, &q, &sq) != 7) { perror("/proc/stat"); exit(1); }
  fclose(f);
  return u + ni + s + q + sq;
}
/* The THREADS argument, 1..256; exits with status 2 otherwise. */
static inline int thread_count(const char *arg) {
  int threads = atoi(arg);
  if (threads < 1 || threads > 256) { fprintf(stderr, "THREADS: 1..256\n"); exit(2); }
  return threads;
}

/* Runs fn on THREADS threads, each given its index, and waits for all of them. */
static inline void run_on_threads(int threads, void *(*fn)(void *)) {
  pthread_t t[256];
  for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, fn, (void *)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
}
#endif
