/* What the C commit experiments (disk-commit.c, journal-commit.c, group-sync.c, uring-commit.c) share: a monotonic
 * clock, the whole machine's busy CPU time from /proc/stat (so the kernel's writeback and io-wq threads count), and
 * the running of one loop on THREADS threads. */
#ifndef COMMIT_BENCH_H
#define COMMIT_BENCH_H
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
/* A directory fsync shared by group commit, as SlimMail's DirectorySync does it (group-sync.c mode 10): a commit
 * announces itself before its file's fsync and joins after its rename; a batch starts once every commit that was
 * announced when it opened has joined, and one fsync of the directory covers every rename made before it started. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long tickets, inflight, asked, covered, calls;
  long batch_ticket, batch_outstanding, batch_target; /* the batch gathering; batch_target 0: none */
  int running;
} group_commit;
#define GROUP_COMMIT_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Before the file's fsync: returns the commit's ticket. */
static inline long group_announce(group_commit *g) {
  pthread_mutex_lock(&g->mu);
  long t = ++g->tickets;
  g->inflight++;
  pthread_mutex_unlock(&g->mu);
  return t;
}

/* After the rename: returns once an fsync of directory_fd that started after this call has finished. */
static inline void group_join(group_commit *g, long ticket, int directory_fd) {
  pthread_mutex_lock(&g->mu);
  g->inflight--;
  if (g->batch_target == 0) {
    g->batch_ticket = g->tickets;
    g->batch_outstanding = g->inflight;
  } else if (ticket <= g->batch_ticket) {
    g->batch_outstanding--;
  }
  long mine = ++g->asked;
  g->batch_target = mine;
  while (g->covered < mine) {
    if (!g->running && g->batch_target != 0 && g->batch_outstanding <= 0) {
      g->running = 1;
      long target = g->batch_target;
      g->batch_target = 0;
      pthread_mutex_unlock(&g->mu);
      if (fsync(directory_fd) != 0) { perror("fsync of the directory"); exit(1); }
      pthread_mutex_lock(&g->mu);
      g->calls++;
      g->covered = target;
      g->running = 0;
      pthread_cond_broadcast(&g->cv);
    } else {
      pthread_cond_wait(&g->cv, &g->mu);
    }
  }
  pthread_mutex_unlock(&g->mu);
}
#endif
