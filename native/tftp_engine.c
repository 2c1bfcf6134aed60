/*
 * The TFTP transfer engine: runs read transfers (after the listener in JavaScript has parsed the
 * request, resolved the file and negotiated options) on a few threads, each an epoll loop over
 * its transfers' sockets. A TFTP server's work is one small packet per round trip per client;
 * doing that in C, with the file's bytes sent straight from the (shared) buffer through an iovec,
 * costs a fraction of what one JavaScript callback and one dgram send per packet cost.
 *
 * Semantics match src/netboot/tftp/transfer.ts (the JavaScript engine), which the tests run too:
 * windowed sending, 16-bit block numbers that wrap, duplicate or stale ACKs never trigger a send
 * (no Sorcerer's Apprentice), retransmission with doubling timeouts, error 0/8 right after an
 * OACK is the Pi's normal "early terminate".
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tftp_engine.h"

enum { OUT_COMPLETE = 0, OUT_EARLY = 1, OUT_CLIENT_ERROR = 2, OUT_TIMEOUT = 3, OUT_ABORTED = 4 };
#define MAX_THREADS 64
#define BATCH 64

typedef struct transfer {
  int fd;
  uint32_t id;
  const uint8_t *data;
  uint64_t size;
  uint32_t blksize, windowsize;
  uint64_t total_blocks, acked;
  int awaiting_oack;
  uint8_t oack[512];
  size_t oack_len;
  uint32_t base_timeout, cur_timeout, max_retries, retries, retransmits;
  uint64_t deadline, started;
  napi_ref data_ref; /* keeps the file's buffer alive; deleted on the JavaScript thread */
  int outcome, err_code;
  char err_msg[128];
  struct transfer *next, *prev; /* the owning thread's list (or its inbox) */
} transfer_t;

typedef struct worker {
  pthread_t thread;
  int ep, wake;
  pthread_mutex_t lock;
  transfer_t *inbox; /* handed over by the JavaScript thread, taken by the worker */
  int stop, abort_all;
  transfer_t *list;
  uint64_t next_deadline;
  int active; /* read by the JavaScript thread to pick the least loaded worker */
  struct engine *engine;
} worker_t;

typedef struct engine {
  int nthreads;
  worker_t workers[MAX_THREADS];
  napi_threadsafe_function tsfn;
  int closed;
} engine_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void arm(worker_t *w, transfer_t *t) {
  t->deadline = now_ms() + t->cur_timeout;
  if (t->deadline < w->next_deadline) w->next_deadline = t->deadline;
}

static void send_window(transfer_t *t) {
  uint64_t last = t->acked + t->windowsize;
  if (last > t->total_blocks) last = t->total_blocks;
  uint8_t hdr[BATCH][4];
  struct iovec iov[BATCH][2];
  struct mmsghdr msgs[BATCH];
  uint64_t idx = t->acked + 1;
  while (idx <= last) {
    int n = 0;
    for (; n < BATCH && idx <= last; n++, idx++) {
      uint64_t off = (idx - 1) * t->blksize;
      uint64_t len = off >= t->size ? 0 : t->size - off;
      if (len > t->blksize) len = t->blksize;
      hdr[n][0] = 0;
      hdr[n][1] = 3;
      hdr[n][2] = (uint8_t)((idx >> 8) & 0xff);
      hdr[n][3] = (uint8_t)(idx & 0xff);
      iov[n][0].iov_base = hdr[n];
      iov[n][0].iov_len = 4;
      iov[n][1].iov_base = (void *)(t->data + (len ? off : 0));
      iov[n][1].iov_len = len;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = iov[n];
      msgs[n].msg_hdr.msg_iovlen = 2;
    }
    /* A full socket buffer (or a vanished client) loses the rest: the timer resends. */
    if (sendmmsg(t->fd, msgs, (unsigned)n, MSG_DONTWAIT) < n) return;
  }
}

static void send_oack(transfer_t *t) {
  (void)send(t->fd, t->oack, t->oack_len, MSG_DONTWAIT);
}

static void finish(worker_t *w, transfer_t *t, int outcome) {
  t->outcome = outcome;
  close(t->fd); /* also removes it from the epoll set */
  t->fd = -1;
  if (t->prev) t->prev->next = t->next;
  else w->list = t->next;
  if (t->next) t->next->prev = t->prev;
  t->next = t->prev = NULL;
  __atomic_sub_fetch(&w->active, 1, __ATOMIC_RELAXED);
  if (napi_call_threadsafe_function(w->engine->tsfn, t, napi_tsfn_blocking) != napi_ok) {
    /* The engine is being torn down and JavaScript is gone: nothing can take the report. */
    free(t);
  }
}

/* Once finish() has run, the JavaScript thread may free the transfer at any moment: callers must
   not touch it again, hence the "ended" results below. */
static int progress(worker_t *w, transfer_t *t) {
  t->retries = 0;
  t->cur_timeout = t->base_timeout;
  if (t->acked >= t->total_blocks) {
    finish(w, t, OUT_COMPLETE);
    return 1;
  }
  send_window(t);
  arm(w, t);
  return 0;
}

/* Returns 1 when the transfer ended. */
static int on_packet(worker_t *w, transfer_t *t, const uint8_t *p, ssize_t n) {
  if (n < 4) return 0;
  uint16_t op = (uint16_t)(p[0] << 8 | p[1]);
  uint16_t num = (uint16_t)(p[2] << 8 | p[3]);
  if (op == 5) {
    size_t k = 0;
    for (ssize_t i = 4; i < n && p[i] && k < sizeof t->err_msg - 1; i++) t->err_msg[k++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    t->err_msg[k] = 0;
    t->err_code = num;
    finish(w, t, t->awaiting_oack && (num == 0 || num == 8) ? OUT_EARLY : OUT_CLIENT_ERROR);
    return 1;
  }
  if (op != 4) return 0;
  if (t->awaiting_oack) {
    if (num != 0) return 0;
    t->awaiting_oack = 0;
    return progress(w, t);
  }
  /* Map the 16-bit number onto the blocks in flight: (acked, acked + window]. */
  for (uint32_t i = 1; i <= t->windowsize; i++) {
    uint64_t idx = t->acked + i;
    if (idx > t->total_blocks) break;
    if ((idx & 0xffff) == num) {
      t->acked = idx;
      return progress(w, t);
    }
  }
  return 0; /* a duplicate or stale ACK: ignored; the timer resends if really lost */
}

static void on_readable(worker_t *w, transfer_t *t) {
  uint8_t buf[1024];
  for (;;) {
    ssize_t n = recv(t->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* ECONNREFUSED: an ICMP "port unreachable" from the client; it has gone. */
      if (errno != EAGAIN && errno != EWOULDBLOCK) finish(w, t, OUT_ABORTED);
      return;
    }
    if (on_packet(w, t, buf, n)) return;
  }
}

static int on_timeout(worker_t *w, transfer_t *t) {
  if (++t->retries > t->max_retries) {
    finish(w, t, OUT_TIMEOUT);
    return 1;
  }
  t->retransmits++;
  t->cur_timeout = t->cur_timeout * 2 > t->base_timeout * 8 ? t->base_timeout * 8 : t->cur_timeout * 2;
  if (t->awaiting_oack) send_oack(t);
  else send_window(t);
  arm(w, t);
  return 0;
}

static void take_inbox(worker_t *w) {
  uint64_t v;
  (void)!read(w->wake, &v, sizeof v);
  pthread_mutex_lock(&w->lock);
  transfer_t *in = w->inbox;
  w->inbox = NULL;
  int abort_all = w->abort_all;
  w->abort_all = 0;
  pthread_mutex_unlock(&w->lock);
  while (in) {
    transfer_t *t = in;
    in = in->next;
    t->next = w->list;
    t->prev = NULL;
    if (w->list) w->list->prev = t;
    w->list = t;
    t->started = now_ms();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, t->fd, &ev) < 0) {
      finish(w, t, OUT_ABORTED);
      continue;
    }
    if (t->awaiting_oack) send_oack(t);
    else send_window(t);
    arm(w, t);
  }
  if (abort_all)
    while (w->list) finish(w, w->list, OUT_ABORTED);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  struct epoll_event evs[256];
  for (;;) {
    int timeout = -1;
    if (w->list) {
      uint64_t now = now_ms();
      timeout = w->next_deadline <= now ? 0 : (int)(w->next_deadline - now);
    }
    int n = epoll_wait(w->ep, evs, 256, timeout);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) take_inbox(w);
      else on_readable(w, evs[i].data.ptr);
    }
    /* epoll reports each socket once per round, and a socket is closed when its transfer ends,
       so no pointer in evs refers to a transfer that ended earlier in the same round. */
    pthread_mutex_lock(&w->lock);
    int stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    if (stop) break;
    uint64_t now = now_ms();
    if (w->list && now >= w->next_deadline) {
      uint64_t next = UINT64_MAX;
      for (transfer_t *t = w->list, *nx; t; t = nx) {
        nx = t->next;
        if (t->deadline <= now && on_timeout(w, t)) continue;
        if (t->deadline < next) next = t->deadline;
      }
      w->next_deadline = next;
    }
  }
  take_inbox(w);
  while (w->list) finish(w, w->list, OUT_ABORTED);
  return NULL;
}

/* ---- the JavaScript side ---- */

static void call_js(napi_env env, napi_value cb, void *ctx, void *data) {
  (void)ctx;
  transfer_t *t = data;
  if (env && cb) {
    napi_value args[6], undef;
    napi_create_uint32(env, t->id, &args[0]);
    napi_create_int32(env, t->outcome, &args[1]);
    uint64_t bytes = t->acked * (uint64_t)t->blksize;
    if (bytes > t->size) bytes = t->size;
    napi_create_double(env, (double)bytes, &args[2]);
    napi_create_uint32(env, t->retransmits, &args[3]);
    napi_create_int32(env, t->outcome == OUT_CLIENT_ERROR || t->outcome == OUT_EARLY ? t->err_code : -1, &args[4]);
    napi_create_string_utf8(env, t->err_msg, NAPI_AUTO_LENGTH, &args[5]);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 6, args, NULL);
    napi_delete_reference(env, t->data_ref);
  }
  free(t);
}

static void engine_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_t *e = data;
  if (!e->closed) {
    /* Garbage-collected without close(): stop the threads; reports can no longer be taken. */
    for (int i = 0; i < e->nthreads; i++) {
      pthread_mutex_lock(&e->workers[i].lock);
      e->workers[i].stop = 1;
      pthread_mutex_unlock(&e->workers[i].lock);
      uint64_t one = 1;
      (void)!write(e->workers[i].wake, &one, sizeof one);
    }
    for (int i = 0; i < e->nthreads; i++) pthread_join(e->workers[i].thread, NULL);
  }
  for (int i = 0; i < e->nthreads; i++) {
    close(e->workers[i].ep);
    close(e->workers[i].wake);
    pthread_mutex_destroy(&e->workers[i].lock);
  }
  free(e);
}

static napi_value throw_errno(napi_env env, const char *step, int e) {
  char msg[200];
  snprintf(msg, sizeof msg, "tftp engine: %s: %s", step, strerror(e));
  napi_throw_error(env, "ETFTPENGINE", msg);
  return NULL;
}

/* tftpEngineCreate(threads: number, onEnd: (id, outcome, bytesAcked, retransmits, errCode, errMsg) => void) */
static napi_value Create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t threads = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || napi_get_value_int32(env, argv[0], &threads) != napi_ok || threads < 1 ||
      threads > MAX_THREADS) {
    napi_throw_type_error(env, "EINVAL", "tftpEngineCreate(threads: 1..64, onEnd)");
    return NULL;
  }
  engine_t *e = calloc(1, sizeof *e);
  if (!e) return throw_errno(env, "calloc", ENOMEM);
  napi_value name;
  napi_create_string_utf8(env, "drover-tftp-engine", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &e->tsfn) != napi_ok) {
    free(e);
    napi_throw_error(env, "ETFTPENGINE", "tftp engine: cannot create the completion callback");
    return NULL;
  }
  napi_unref_threadsafe_function(env, e->tsfn); /* an idle engine must not keep Node running */
  for (int i = 0; i < threads; i++) {
    worker_t *w = &e->workers[i];
    w->engine = e;
    w->next_deadline = UINT64_MAX;
    pthread_mutex_init(&w->lock, NULL);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (w->ep < 0 || w->wake < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) < 0 || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      int err = errno;
      /* Stop the threads already running, then give up. */
      e->nthreads = i;
      for (int k = 0; k < i; k++) {
        pthread_mutex_lock(&e->workers[k].lock);
        e->workers[k].stop = 1;
        pthread_mutex_unlock(&e->workers[k].lock);
        uint64_t one = 1;
        (void)!write(e->workers[k].wake, &one, sizeof one);
        pthread_join(e->workers[k].thread, NULL);
      }
      if (w->ep >= 0) close(w->ep);
      if (w->wake >= 0) close(w->wake);
      e->closed = 1;
      napi_release_threadsafe_function(e->tsfn, napi_tsfn_abort);
      e->nthreads = i;
      engine_finalize(env, e, NULL);
      return throw_errno(env, "starting threads", err);
    }
    e->nthreads = i + 1;
  }
  napi_value ext;
  napi_create_external(env, e, engine_finalize, NULL, &ext);
  return ext;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) { return napi_get_value_uint32(env, v, out) == napi_ok; }

/* tftpEngineStart(engine, id, host, clientAddress, clientPort, data: Buffer, blksize, windowsize, timeoutMs, maxRetries, oack: Buffer | null) */
static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  engine_t *e = NULL;
  uint32_t id, port, blksize, windowsize, timeout, retries;
  char host[INET6_ADDRSTRLEN + 1] = {0}, client[INET6_ADDRSTRLEN + 1] = {0};
  size_t len;
  void *data = NULL;
  size_t size = 0;
  void *oack = NULL;
  size_t oack_len = 0;
  napi_valuetype oack_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 11 || napi_get_value_external(env, argv[0], (void **)&e) != napi_ok || !get_u32(env, argv[1], &id) ||
      napi_get_value_string_utf8(env, argv[2], host, sizeof host, &len) != napi_ok || napi_get_value_string_utf8(env, argv[3], client, sizeof client, &len) != napi_ok ||
      !get_u32(env, argv[4], &port) || napi_get_buffer_info(env, argv[5], &data, &size) != napi_ok || !get_u32(env, argv[6], &blksize) || !get_u32(env, argv[7], &windowsize) ||
      !get_u32(env, argv[8], &timeout) || !get_u32(env, argv[9], &retries) || napi_typeof(env, argv[10], &oack_type) != napi_ok || port > 65535 || blksize < 8 || blksize > 65464 ||
      windowsize < 1 || windowsize > 65535 || timeout < 1) {
    napi_throw_type_error(env, "EINVAL", "tftpEngineStart: bad arguments");
    return NULL;
  }
  if (oack_type != napi_null && (napi_get_buffer_info(env, argv[10], &oack, &oack_len) != napi_ok || oack_len > 512)) {
    napi_throw_type_error(env, "EINVAL", "tftpEngineStart: oack must be a Buffer of at most 512 bytes, or null");
    return NULL;
  }
  if (e->closed) {
    napi_throw_error(env, "ETFTPENGINE", "tftp engine: closed");
    return NULL;
  }
  int v6 = strchr(host, ':') != NULL;
  struct sockaddr_storage local, remote;
  socklen_t slen;
  memset(&local, 0, sizeof local);
  memset(&remote, 0, sizeof remote);
  if (v6) {
    struct sockaddr_in6 *l = (struct sockaddr_in6 *)&local, *r = (struct sockaddr_in6 *)&remote;
    l->sin6_family = r->sin6_family = AF_INET6;
    r->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &l->sin6_addr) != 1 || inet_pton(AF_INET6, client, &r->sin6_addr) != 1) return throw_errno(env, "address", EINVAL);
    slen = sizeof(struct sockaddr_in6);
  } else {
    struct sockaddr_in *l = (struct sockaddr_in *)&local, *r = (struct sockaddr_in *)&remote;
    l->sin_family = r->sin_family = AF_INET;
    r->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &l->sin_addr) != 1 || inet_pton(AF_INET, client, &r->sin_addr) != 1) return throw_errno(env, "address", EINVAL);
    slen = sizeof(struct sockaddr_in);
  }
  /* A fresh ephemeral port per transfer (the TID), connected to the client: the kernel drops
     everyone else's packets and every send skips the address lookup. */
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&local, slen) < 0 || connect(fd, (struct sockaddr *)&remote, slen) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind/connect", err);
  }
  transfer_t *t = calloc(1, sizeof *t);
  if (!t) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  t->fd = fd;
  t->id = id;
  t->data = data;
  t->size = size;
  t->blksize = blksize;
  t->windowsize = windowsize;
  t->total_blocks = size / blksize + 1; /* the last block is shorter than blksize, possibly empty */
  t->awaiting_oack = oack != NULL;
  if (oack) memcpy(t->oack, oack, oack_len);
  t->oack_len = oack_len;
  t->base_timeout = t->cur_timeout = timeout;
  t->max_retries = retries;
  t->outcome = OUT_ABORTED;
  if (napi_create_reference(env, argv[5], 1, &t->data_ref) != napi_ok) {
    close(fd);
    free(t);
    napi_throw_error(env, "ETFTPENGINE", "tftp engine: cannot reference the file buffer");
    return NULL;
  }
  worker_t *best = &e->workers[0];
  for (int i = 1; i < e->nthreads; i++)
    if (__atomic_load_n(&e->workers[i].active, __ATOMIC_RELAXED) < __atomic_load_n(&best->active, __ATOMIC_RELAXED)) best = &e->workers[i];
  __atomic_add_fetch(&best->active, 1, __ATOMIC_RELAXED);
  pthread_mutex_lock(&best->lock);
  t->next = best->inbox;
  best->inbox = t;
  pthread_mutex_unlock(&best->lock);
  uint64_t one = 1;
  (void)!write(best->wake, &one, sizeof one);
  return NULL;
}

static napi_value signal_all(napi_env env, napi_callback_info info, int stop) {
  size_t argc = 1;
  napi_value argv[1];
  engine_t *e = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_external(env, argv[0], (void **)&e) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected an engine");
    return NULL;
  }
  if (e->closed) return NULL;
  for (int i = 0; i < e->nthreads; i++) {
    pthread_mutex_lock(&e->workers[i].lock);
    if (stop) e->workers[i].stop = 1;
    else e->workers[i].abort_all = 1;
    pthread_mutex_unlock(&e->workers[i].lock);
    uint64_t one = 1;
    (void)!write(e->workers[i].wake, &one, sizeof one);
  }
  if (stop) {
    /* Each thread reports its remaining transfers as aborted, then exits. The reports stay
       queued and reach JavaScript after this returns. */
    for (int i = 0; i < e->nthreads; i++) pthread_join(e->workers[i].thread, NULL);
    e->closed = 1;
    napi_release_threadsafe_function(e->tsfn, napi_tsfn_release);
  }
  return NULL;
}

/* tftpEngineAbortAll(engine) */
static napi_value AbortAll(napi_env env, napi_callback_info info) { return signal_all(env, info, 0); }

/* tftpEngineClose(engine): aborts every transfer, stops the threads. */
static napi_value Close(napi_env env, napi_callback_info info) { return signal_all(env, info, 1); }

void tftp_engine_init(napi_env env, napi_value exports) {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"tftpEngineCreate", Create}, {"tftpEngineStart", Start}, {"tftpEngineAbortAll", AbortAll}, {"tftpEngineClose", Close}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
}
