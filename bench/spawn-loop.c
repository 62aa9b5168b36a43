/* What running a delivery program costs on this machine before any server's work: N runs of a program, each
 * started with posix_spawn, given a 1.2 KB message on its stdin through a pipe and waited for, on THREADS threads.
 * The floor of a pipe delivery (bench/pipe.sh prints it beside the servers). Prints runs/s and the whole machine's
 * CPU per run (/proc/stat).
 * Usage: gcc -O2 -pthread -o spawn bench/spawn-loop.c && ./spawn N THREADS PROGRAM [ARG...] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char **program;
static int per_thread;
static char message[1200];

static void *runs(void *unused) {
  (void)unused;
  for (int i = 0; i < per_thread; i++) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) { perror("pipe2"); exit(1); }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, p[0], 0);
    pid_t pid;
    int e = posix_spawn(&pid, program[0], &actions, NULL, program, environ);
    if (e != 0) { fprintf(stderr, "posix_spawn %s: %s\n", program[0], strerror(e)); exit(1); }
    posix_spawn_file_actions_destroy(&actions);
    close(p[0]);
    if (write(p[1], message, sizeof message) != (ssize_t)sizeof message) { perror("write"); exit(1); }
    close(p[1]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "%s failed\n", program[0]);
      exit(1);
    }
  }
  return NULL;
}

/* Busy clock ticks of the whole machine (user + nice + system + irq + softirq). */
static long long busy_ticks(void) {
  long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (!f || fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8) {
    perror("/proc/stat");
    exit(1);
  }
  fclose(f);
  return v[0] + v[1] + v[2] + v[5] + v[6];
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s N THREADS PROGRAM [ARG...]\n", argv[0]); return 2; }
  int n = atoi(argv[1]), threads = atoi(argv[2]);
  program = argv + 3;
  per_thread = n / threads;
  memset(message, 'x', sizeof message);
  for (size_t i = 77; i < sizeof message; i += 78) message[i] = '\n';

  pthread_t t[256];
  if (threads < 1 || threads > 256) { fprintf(stderr, "THREADS: 1-256\n"); return 2; }
  struct timespec a, b;
  long long busy0 = busy_ticks();
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, runs, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long long busy = busy_ticks() - busy0;
  double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  int done = per_thread * threads;
  printf("%d runs of %s on %d threads: %.0f runs/s, %.0f us of CPU per run\n", done, program[0], threads,
         done / seconds, busy * 1e6 / sysconf(_SC_CLK_TCK) / done);
  return 0;
}
