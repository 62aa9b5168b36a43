/* What the C commit experiments (disk-commit.c, journal-commit.c, group-sync.c, uring-commit.c) measure with:
 * a monotonic clock, and the whole machine's busy CPU time from /proc/stat (so the kernel's writeback and
 * io-wq threads count). */
#ifndef COMMIT_CLOCK_H
#define COMMIT_CLOCK_H
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
#endif
