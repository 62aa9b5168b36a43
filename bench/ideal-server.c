/* The cheapest server that keeps SlimMail's Maildir contract, to measure how far that contract lets any server go on
 * this machine (docs/benchmarks.md, "What stands between SlimMail and the rest"). One epoll thread speaks just
 * enough SMTP for smtp-source (220; EHLO, HELO, MAIL, RCPT, RSET, NOOP answered 250 unchecked; DATA; the body up to
 * <CRLF>.<CRLF>, not unstuffed; QUIT) and logs nothing; at the end of the data it hands the body to THREADS commit
 * threads that make it durable as SlimMail does: the file created in a staging directory DIR/tmp/.ideal-N, written,
 * fsync'd, renamed into DIR/new, and DIR/new fsync'd by a group commit that waits for the commits already in their
 * file fsync (bench/group-sync.c mode 10). Then the event thread sends 250. What it leaves out (address parsing,
 * routing, limits, timeouts, TLS, logging, a Received header, dot-unstuffing) is work SlimMail has to do.
 * Usage: gcc -O2 -pthread -o ideal bench/ideal-server.c && ./ideal PORT DIR THREADS   (DIR a new directory; runs until
 * killed) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit-bench.h"

#define MAX_FD 65536
#define STAGING 16

enum { COMMANDS, DATA, COMMITTING };

typedef struct {
  int open, state, match;
  unsigned generation;
  size_t in_len, body_len, body_cap;
  char *body;
  char in[8192];
} conn;

typedef struct job { int fd; unsigned generation; char *body; size_t len; struct job *next; } job;

static conn *conns;
static const char *dir;
static int new_fd, wake_fd;
static unsigned long next_id;

static struct { pthread_mutex_t mu; pthread_cond_t cv; job *head, *tail; } todo = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL};
static struct { pthread_mutex_t mu; job *head; } done = {PTHREAD_MUTEX_INITIALIZER, NULL};

/* Group commit of DIR/new, as SlimMail does it (commit-bench.h). */
static group_commit group = GROUP_COMMIT_INIT;

static void *committer(void *arg) {
  long self = (long)arg;
  char staged[4096], final[4096];
  for (;;) {
    pthread_mutex_lock(&todo.mu);
    while (!todo.head) pthread_cond_wait(&todo.cv, &todo.mu);
    job *j = todo.head;
    todo.head = j->next;
    if (!todo.head) todo.tail = NULL;
    unsigned long id = ++next_id;
    pthread_mutex_unlock(&todo.mu);

    snprintf(staged, sizeof staged, "%s/tmp/.ideal-%ld/%lu.%d", dir, self % STAGING, id, getpid());
    snprintf(final, sizeof final, "%s/new/%lu.%d.ideal,S=%zu", dir, id, getpid(), j->len);
    int fd = open(staged, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) { perror(staged); exit(1); }
    if (pwrite(fd, j->body, j->len, 0) != (ssize_t)j->len) { perror("pwrite"); exit(1); }
    long ticket = group_announce(&group);
    if (fsync(fd) != 0) { perror("fsync"); exit(1); }
    close(fd);
    if (rename(staged, final) != 0) { perror(final); exit(1); }
    group_join(&group, ticket, new_fd);

    pthread_mutex_lock(&done.mu);
    j->next = done.head;
    done.head = j;
    pthread_mutex_unlock(&done.mu);
    uint64_t one = 1;
    if (write(wake_fd, &one, sizeof one) != sizeof one) { perror("eventfd"); exit(1); }
  }
  return NULL;
}

static void reply(int fd, const char *text) { (void)send(fd, text, strlen(text), MSG_NOSIGNAL); }

static void close_conn(int fd) {
  conn *c = &conns[fd];
  free(c->body);
  c->body = NULL;
  c->open = 0;
  c->generation++;
  close(fd);
}

/* Feeds data bytes; returns how many it took, and sets c->state to COMMITTING (the job queued) at <CRLF>.<CRLF>. */
static size_t feed_data(int fd, conn *c, const char *p, size_t n) {
  static const char end[] = "\r\n.\r\n";
  size_t i = 0;
  while (i < n) {
    char ch = p[i++];
    if (c->body_len == c->body_cap) {
      c->body_cap = c->body_cap ? c->body_cap * 2 : 4096;
      if (!(c->body = realloc(c->body, c->body_cap))) { perror("realloc"); exit(1); }
    }
    c->body[c->body_len++] = ch;
    c->match = ch == end[c->match] ? c->match + 1 : ch == '\r' ? 1 : 0;
    if (c->match == 5) {
      job *j = malloc(sizeof *j);
      if (!j) { perror("malloc"); exit(1); }
      *j = (job){fd, c->generation, c->body, c->body_len - 3, NULL};
      c->body = NULL;
      c->body_len = c->body_cap = 0;
      c->state = COMMITTING;
      pthread_mutex_lock(&todo.mu);
      if (todo.tail) todo.tail->next = j; else todo.head = j;
      todo.tail = j;
      pthread_cond_signal(&todo.cv);
      pthread_mutex_unlock(&todo.mu);
      break;
    }
  }
  return i;
}

/* Handles what is buffered: command lines, or data; stops while a commit runs. */
static void process(int fd) {
  conn *c = &conns[fd];
  size_t used = 0;
  while (c->open && used < c->in_len && c->state != COMMITTING) {
    if (c->state == DATA) {
      used += feed_data(fd, c, c->in + used, c->in_len - used);
      continue;
    }
    char *line = c->in + used, *lf = memchr(line, '\n', c->in_len - used);
    if (!lf) break;
    used = (size_t)(lf - c->in) + 1;
    if (!strncasecmp(line, "DATA", 4)) {
      c->state = DATA;
      c->match = 2; /* the body starts after a line end: "." alone ends it */
      reply(fd, "354 End data with <CR><LF>.<CR><LF>\r\n");
    } else if (!strncasecmp(line, "QUIT", 4)) {
      reply(fd, "221 2.0.0 Bye\r\n");
      close_conn(fd);
      return;
    } else if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4)) {
      reply(fd, "250 ideal\r\n");
    } else if (!strncasecmp(line, "MAIL", 4)) {
      reply(fd, "250 2.1.0 Ok\r\n");
    } else if (!strncasecmp(line, "RCPT", 4)) {
      reply(fd, "250 2.1.5 Ok\r\n");
    } else {
      reply(fd, "250 2.0.0 Ok\r\n");
    }
  }
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s PORT DIR THREADS\n", argv[0]); return 2; }
  dir = argv[2];
  int threads = atoi(argv[3]);
  if (threads < 1 || threads > 256) { fprintf(stderr, "THREADS: 1..256\n"); return 2; }
  char path[4096];
  for (const char *sub = "tmp\0new\0"; *sub; sub += strlen(sub) + 1) {
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) { perror(path); return 1; }
  }
  for (int i = 0; i < STAGING; i++) {
    snprintf(path, sizeof path, "%s/tmp/.ideal-%d", dir, i);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) { perror(path); return 1; }
  }
  snprintf(path, sizeof path, "%s/new", dir);
  if ((new_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) { perror(path); return 1; }
  if (!(conns = calloc(MAX_FD, sizeof *conns))) { perror("calloc"); return 1; }
  wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) { perror("listen"); return 1; }

  for (long i = 0; i < threads; i++) {
    pthread_t t;
    pthread_create(&t, NULL, committer, (void *)i);
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  ev.data.fd = wake_fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int e = 0; e < n; e++) {
      int fd = events[e].data.fd;
      if (fd == listener) {
        int client;
        while ((client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          if (client >= MAX_FD) { close(client); continue; }
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          conn *c = &conns[client];
          c->open = 1;
          c->state = COMMANDS;
          c->in_len = 0;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = client};
          epoll_ctl(ep, EPOLL_CTL_ADD, client, &cev);
          reply(client, "220 ideal ESMTP\r\n");
        }
      } else if (fd == wake_fd) {
        uint64_t count;
        (void)read(wake_fd, &count, sizeof count);
        pthread_mutex_lock(&done.mu);
        job *j = done.head;
        done.head = NULL;
        pthread_mutex_unlock(&done.mu);
        while (j) {
          job *next = j->next;
          conn *c = &conns[j->fd];
          if (c->open && c->generation == j->generation) {
            c->state = COMMANDS;
            reply(j->fd, "250 2.0.0 Ok: queued\r\n");
            process(j->fd);
          }
          free(j->body);
          free(j);
          j = next;
        }
      } else {
        conn *c = &conns[fd];
        ssize_t got = read(fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (got <= 0) {
          if (got < 0 && errno == EAGAIN) continue;
          close_conn(fd);
          continue;
        }
        c->in_len += (size_t)got;
        process(fd);
        if (c->open && c->in_len == sizeof c->in && c->state != COMMITTING) close_conn(fd); /* a line too long */
      }
    }
  }
}
