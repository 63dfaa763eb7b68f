/*
 * Connect generator for the `conn` scenario: opens N idle MQTT 3.1.1 connections (clean session,
 * keepalive 0, client ids <prefix><i>), at most C connects in flight, each counted once its
 * CONNACK (return code 0) arrived. Written in C so that the generator is not what sets the
 * connect rate: node:net under Deno costs 85-90 us of CPU per connect, about as much as either
 * broker, so on two cores the generator's own core was the limit for both brokers.
 *
 *   cc -O2 -o connect_gen bench/connect_gen.c
 *   connect_gen PORT COUNT CONCURRENCY PREFIX SRC_BASE
 *
 * SRC_BASE "127.1.7" makes connection i connect from 127.1.7.(1 + i / 1000), as the node:net
 * generator does (many source addresses, so no round runs out of ephemeral ports).
 * Prints one JSON line once every connect finished:
 *   {"connected":N,"failed":F,"seconds":S,"firstError":"..."}
 * then keeps the connections open until stdin ends, and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING = 1, WAIT_CONNACK = 2, DONE = 3 };

struct conn {
  int fd;
  int state;
  int got;
  unsigned char head[4];
};

static struct conn *conns;
static int epfd, port, count, concurrency, next_i, in_flight, connected, failed;
static const char *prefix, *src_base;
static char first_error[128];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(struct conn *c, const char *why) {
  if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", why);
  failed++;
  in_flight--;
  c->state = DONE;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* MQTT 3.1.1 CONNECT: clean session, keepalive 0, no will, no credentials. */
static int encode_connect(unsigned char *out, const char *id) {
  int idlen = (int)strlen(id);
  int rem = 10 + 2 + idlen;
  int n = 0;
  out[n++] = 0x10;
  out[n++] = (unsigned char)rem; /* ids are short: one length byte */
  const unsigned char var[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0};
  memcpy(out + n, var, sizeof var);
  n += sizeof var;
  out[n++] = (unsigned char)(idlen >> 8);
  out[n++] = (unsigned char)idlen;
  memcpy(out + n, id, idlen);
  return n + idlen;
}

static void start_one(void) {
  int i = next_i++;
  struct conn *c = &conns[i];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  in_flight++;
  if (c->fd < 0) return fail(c, strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char src[64];
  snprintf(src, sizeof src, "%s.%d", src_base, 1 + i / 1000);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, src, &a.sin_addr);
  if (bind(c->fd, (struct sockaddr *)&a, sizeof a) < 0) return fail(c, strerror(errno));
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (connect(c->fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
    return fail(c, strerror(errno));
  }
  c->state = CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (unsigned)i};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) return fail(c, strerror(errno));
}

static void on_event(int i, unsigned events) {
  struct conn *c = &conns[i];
  if (c->state == DONE) return;
  if (c->state == CONNECTING && (events & EPOLLOUT)) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return fail(c, strerror(err));
    char id[64];
    snprintf(id, sizeof id, "%s%d", prefix, i);
    unsigned char pkt[128];
    int n = encode_connect(pkt, id);
    if (write(c->fd, pkt, n) != n) return fail(c, "short write of CONNECT");
    c->state = WAIT_CONNACK;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return;
  }
  if (c->state == WAIT_CONNACK && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    ssize_t r = read(c->fd, c->head + c->got, 4 - c->got);
    if (r <= 0) {
      if (r < 0 && errno == EAGAIN) return;
      return fail(c, r == 0 ? "closed before CONNACK" : strerror(errno));
    }
    c->got += (int)r;
    if (c->got < 4) return;
    if (c->head[0] != 0x20 || c->head[3] != 0) {
      char why[64];
      snprintf(why, sizeof why, "CONNACK return code %d", c->head[3]);
      return fail(c, why);
    }
    /* Idle from now on: nothing more is read, so the connection is left out of epoll. */
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->state = DONE;
    connected++;
    in_flight--;
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s PORT COUNT CONCURRENCY PREFIX SRC_BASE\n", argv[0]);
    return 2;
  }
  port = atoi(argv[1]);
  count = atoi(argv[2]);
  concurrency = atoi(argv[3]);
  prefix = argv[4];
  src_base = argv[5];
  conns = calloc(count, sizeof *conns);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  double t0 = now(), deadline = t0 + 120;
  struct epoll_event evs[256];
  while ((next_i < count || in_flight > 0) && now() < deadline) {
    while (next_i < count && in_flight < concurrency && failed <= count / 100) start_one();
    if (in_flight == 0) break;
    int n = epoll_wait(epfd, evs, 256, 1000);
    for (int k = 0; k < n; k++) on_event((int)evs[k].data.u32, evs[k].events);
  }
  double secs = now() - t0;
  if (in_flight > 0 && !first_error[0]) snprintf(first_error, sizeof first_error, "timeout");
  printf("{\"connected\":%d,\"failed\":%d,\"seconds\":%.6f,\"firstError\":\"%s\"}\n", connected,
         failed + in_flight, secs, first_error);
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  for (int i = 0; i < next_i; i++) {
    if (conns[i].fd >= 0) close(conns[i].fd);
  }
  return 0;
}
