/*
 * netsock: the one socket option Node's dgram module lacks. A DHCP server (and a virtual Pi's
 * DHCP client) must receive and send broadcasts on ONE named interface, which on Linux takes
 * SO_BINDTODEVICE. This opens such a UDP socket and returns its file descriptor; Node then
 * wraps it with dgram's socket.bind({ fd }).
 *
 * The same addon carries the TFTP transfer engine (tftp_engine.c).
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tftp_engine.h"

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    default: return "EIO";
  }
}

/* openUdp4(ifname: string, port: number, address: string, rcvbuf: number): number (fd) */
static napi_value OpenUdp4(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t rcvbuf = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 || napi_get_value_int32(env, argv[3], &rcvbuf) != napi_ok || rcvbuf < 0) {
    napi_throw_type_error(env, "EINVAL", "openUdp4(ifname, port, address, rcvbuf)");
    return NULL;
  }
  char ifname[IFNAMSIZ + 1] = {0};
  char addr[INET_ADDRSTRLEN + 1] = {0};
  size_t len = 0;
  int32_t port = 0;
  if (napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &len) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], addr, sizeof addr, &len) != napi_ok || port < 0 || port > 65535) {
    napi_throw_type_error(env, "EINVAL", "openUdp4(ifname: string, port: 0..65535, address: string)");
    return NULL;
  }
  const char *step = "socket";
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0) goto fail;
  step = "SO_REUSEADDR";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
  step = "SO_BROADCAST";
  if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) goto fail;
  /* A deep receive queue rides out a storm of DISCOVERs while the event loop is busy. Beyond
     net.core.rmem_max only with CAP_NET_ADMIN (SO_RCVBUFFORCE); otherwise the kernel caps it. */
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  step = "SO_BINDTODEVICE";
  if (ifname[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) goto fail;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  step = "address";
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    errno = EINVAL;
    goto fail;
  }
  step = "bind";
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) goto fail;
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;

fail: {
  int e = errno;
  if (fd >= 0) close(fd);
  char msg[256];
  snprintf(msg, sizeof msg, "%s on %s, port %d: %s", step, ifname[0] ? ifname : "any interface", port, strerror(e));
  napi_throw_error(env, errno_code(e), msg);
  return NULL;
}
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "openUdp4", NAPI_AUTO_LENGTH, OpenUdp4, NULL, &fn);
  napi_set_named_property(env, exports, "openUdp4", fn);
  tftp_engine_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
