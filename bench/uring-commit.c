/* Whether io_uring would make the durable Maildir commit cheaper (docs/benchmarks.md, "Commit designs measured
 * in C"). One thread keeps K messages in flight. Each is created unnamed (O_TMPFILE) and written with plain system
 * calls; its fsync goes through io_uring; then it is linked into DIR and waits for a directory fsync, also through
 * io_uring, one at a time, each covering every link made while the previous one ran (group commit).
 * Compare with bench/group-sync.c mode 1: the same commit with blocking calls on K threads.
 * Prints files/s, the whole machine's CPU per message (/proc/stat) and messages per directory fsync.
 * Usage: apt-get install liburing-dev; gcc -O2 -o uring bench/uring-commit.c -luring && ./uring DIR N K
 *        (a new DIR each run) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commit-bench.h"

#define MAXK 256
#define DIRECTORY_FSYNC 1000000

static const char *dir;
static int dirfd_, n, k, started, done;
static int fds[MAXK], seq[MAXK];
static int running[MAXK], running_n;   /* messages the running directory fsync covers */
static int next[MAXK], next_n;         /* linked while it ran: the next one's */
static int dir_fsync_running;
static long dir_fsyncs;
static struct io_uring ring;
static char buf[1200];

static void submit_fsync(int fd, unsigned long long tag) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  io_uring_prep_fsync(sqe, fd, 0);
  io_uring_sqe_set_data64(sqe, tag);
}

/* Slot i takes the next message: create, write, and queue its fsync. */
static void start(int i) {
  int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) { perror("open O_TMPFILE"); exit(1); }
  if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf) { perror("pwrite"); exit(1); }
  fds[i] = fd;
  seq[i] = started++;
  submit_fsync(fd, i);
}

static void start_directory_fsync(void) {
  submit_fsync(dirfd_, DIRECTORY_FSYNC);
  dir_fsync_running = 1;
  dir_fsyncs++;
}

/* The file of slot i is durable: name it, then wait for a directory fsync that starts after the link. */
static void file_synced(int i) {
  char proc[64], name[4096];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fds[i]);
  snprintf(name, sizeof name, "%s/m%d.%d", dir, getpid(), seq[i]);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) != 0) { perror("linkat"); exit(1); }
  close(fds[i]);
  if (!dir_fsync_running) { running[running_n++] = i; start_directory_fsync(); }
  else next[next_n++] = i;
}

static void directory_synced(void) {
  for (int j = 0; j < running_n; j++) {
    done++;
    if (started < n) start(running[j]);
  }
  running_n = 0;
  dir_fsync_running = 0;
  if (next_n > 0) {
    memcpy(running, next, sizeof(int) * next_n);
    running_n = next_n;
    next_n = 0;
    start_directory_fsync();
  }
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s DIR N K\n", argv[0]); return 2; }
  dir = argv[1]; n = atoi(argv[2]); k = atoi(argv[3]);
  if (k < 1 || k > MAXK) { fprintf(stderr, "K: 1..%d\n", MAXK); return 2; }
  memset(buf, 'x', sizeof buf);
  dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
  if (dirfd_ < 0 || io_uring_queue_init(2 * MAXK, &ring, 0) != 0) { perror("setup"); return 1; }
  long long c0 = busy_ticks();
  double t0 = now();
  for (int i = 0; i < k && started < n; i++) start(i);
  io_uring_submit(&ring);
  while (done < n) {
    struct io_uring_cqe *cqe;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) { perror("io_uring_wait_cqe"); return 1; }
    do {
      unsigned long long tag = io_uring_cqe_get_data64(cqe);
      int res = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      if (res < 0) { fprintf(stderr, "fsync failed: %s\n", strerror(-res)); return 1; }
      if (tag == DIRECTORY_FSYNC) directory_synced(); else file_synced((int)tag);
    } while (io_uring_peek_cqe(&ring, &cqe) == 0);
    io_uring_submit(&ring);
  }
  double elapsed = now() - t0;
  long long c1 = busy_ticks();
  printf("io_uring, %d in flight: %.0f files/s, %.0f us of CPU per message, %.1f messages per directory fsync\n",
         k, n / elapsed, (c1 - c0) * 1e6 / sysconf(_SC_CLK_TCK) / n, (double)n / dir_fsyncs);
  return 0;
}
