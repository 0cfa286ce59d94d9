/*
 * clatd_native: the system calls clatd needs that Node.js does not offer, and nothing else.
 *
 * Rules of this file (see src/sys/addon.ts for the typed side):
 *   - Every function wraps one system call, or a loop of the same call for batched I/O (bind and
 *     unbind hand the batched calls their arrays). Parsing, policy and packet logic live in
 *     TypeScript.
 *   - System call failures return -errno as a number; TypeScript turns them into named errors.
 *     Wrong argument types are programming errors and throw TypeError.
 *   - Every fd is opened non-blocking and close-on-exec: the loops never block in a call.
 *   - Context-aware (NAPI_MODULE_INIT, no global state), so workers can load it too; the one
 *     piece of state, the bound array sets, is per environment.
 *   - Struct layouts and constants come from the kernel headers here, never from hand-written
 *     numbers in TypeScript (the `constants` export hands them over).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <sched.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>

#include <node_api.h>
#include <uv.h>

/* Most messages one recvmmsg/sendmmsg call moves; the arrays live on the stack. */
#define MMSG_CHUNK 64

/* Older headers lack the UDP segmentation offload bits (Linux 6.2). */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

/* ---- argument helpers ------------------------------------------------------------------------ */

#define CHECK(call)                                                                                 \
  do {                                                                                              \
    if ((call) != napi_ok) return NULL;                                                             \
  } while (0)

#define ARGS(n)                                                                                     \
  size_t argc = (n);                                                                                \
  napi_value argv[(n) > 0 ? (n) : 1];                                                               \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 1;
  return t == napi_undefined || t == napi_null;
}

static int get_i32(napi_env env, napi_value v, int32_t *out, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, what);
    return 0;
  }
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, what);
    return 0;
  }
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static size_t elem_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 1;
  }
}

/* A typed array (any Buffer is one) as pointer, element count, bytes and type; throws TypeError otherwise. */
struct view {
  void *p;
  size_t n;     /* elements */
  size_t bytes; /* n * element size */
  napi_typedarray_type type;
  int set;
};

static int get_view(napi_env env, napi_value v, struct view *out, const char *what) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    throw_type(env, what);
    return 0;
  }
  if (napi_get_typedarray_info(env, v, &out->type, &out->n, &out->p, NULL, NULL) != napi_ok) return 0;
  out->bytes = out->n * elem_size(out->type);
  out->set = 1;
  return 1;
}

/* Any Buffer or typed array, as bytes (the pointer already includes the view's byte offset). */
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len, const char *what) {
  struct view w;
  if (!get_view(env, v, &w, what)) return 0;
  *data = w.p;
  *len = w.bytes;
  return 1;
}

/* A typed array of type `want`, as pointer and element count; throws TypeError otherwise. */
static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count,
                     const char *what) {
  struct view w;
  if (!get_view(env, v, &w, what)) return 0;
  if (w.type != want) {
    throw_type(env, what);
    return 0;
  }
  *data = w.p;
  *count = w.n;
  return 1;
}

/* A string argument copied into `buf` (NUL-terminated); fails if it does not fit. */
static int get_str(napi_env env, napi_value v, char *buf, size_t size, const char *what) {
  size_t n;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    throw_type(env, what);
    return 0;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return 0;
  if (n >= size) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return 0;
  }
  return napi_get_value_string_utf8(env, v, buf, size, &n) == napi_ok;
}

/*
 * A number for JS: an int32 when it is one (counts, fds, errnos: nearly every result), which V8
 * turns into a small integer directly, without the checks its double path makes first.
 */
static napi_value num(napi_env env, double v) {
  napi_value r;
  if (v >= INT32_MIN && v <= INT32_MAX && v == (double)(int32_t)v)
    CHECK(napi_create_int32(env, (int32_t)v, &r));
  else
    CHECK(napi_create_double(env, v, &r));
  return r;
}

/* The result of a call that returns >= 0 on success and -1 with errno on failure. */
static napi_value result(napi_env env, long rc) { return num(env, rc < 0 ? -errno : rc); }

/*
 * A Node-API call failed: make sure JS sees an exception. Most failures leave one pending; those
 * that do not (a bad status with nothing thrown) would otherwise return `undefined` to a caller
 * expecting a number or an object.
 */
static napi_value napi_failed(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) napi_throw_error(env, "ERR_CLATD_NAPI", what);
  return NULL;
}

/*
 * The result of a call that returns a new fd: like result(), but the fd is closed when it cannot
 * be handed to JS, so no error path leaves an fd open that nothing owns.
 */
static napi_value fd_result(napi_env env, int fd) {
  if (fd < 0) return num(env, -errno);
  napi_value r = num(env, fd);
  if (r == NULL) {
    close(fd);
    return napi_failed(env, "cannot return the new fd");
  }
  return r;
}

/* ---- bound array sets ------------------------------------------------------------------------ */
/*
 * bind(a0, ..., a5) -> id; unbind(id) -> 1 | 0 (not bound).
 * The batched calls and pollMany work on typed arrays that the TypeScript side hands over once, as
 * a numbered set (a batch and its device's extras), not as arguments of every call. Why: Node-API
 * validates a typed-array argument by reaching into three V8 objects, and after an idle gap every
 * one of them is a cache and TLB miss; measured on this VM, about 1 µs per array per cold call, and
 * a ping round trip made five calls with nineteen arrays between them (bench/README.md).
 * A set holds a reference on each array, so the memory the pointers below lead to stays alive and
 * in place until unbind. Sets belong to the environment (main thread or worker) that made them.
 */
#define BOUND_SLOTS 6
#define BOUND_MAX 65536

struct bound {
  int used;
  struct view v[BOUND_SLOTS];
  napi_ref ref[BOUND_SLOTS];
};

struct state {
  struct bound *b;
  uint32_t cap;
};

#define ARGS_STATE(n)                                                                               \
  size_t argc = (n);                                                                                \
  napi_value argv[(n) > 0 ? (n) : 1];                                                               \
  struct state *st;                                                                                 \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&st))

static napi_value Bind(napi_env env, napi_callback_info info) {
  ARGS_STATE(BOUND_SLOTS + 1);
  if (argc > BOUND_SLOTS) return throw_type(env, "bind takes at most 6 arrays");
  struct bound nb = {0};
  for (size_t i = 0; i < argc; i++) {
    if (is_nullish(env, argv[i])) continue;
    /* Asking for the data pointer moves a small on-heap array's bytes off the heap, for good. */
    if (!get_view(env, argv[i], &nb.v[i], "bind takes typed arrays (or null)")) return NULL;
  }
  uint32_t id = 0;
  while (id < st->cap && st->b[id].used) id++;
  if (id == st->cap) {
    uint32_t cap = st->cap == 0 ? 16 : st->cap * 2;
    if (cap > BOUND_MAX) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "too many bound array sets (unbind the ones no longer used)");
      return NULL;
    }
    struct bound *b = realloc(st->b, cap * sizeof *b);
    if (b == NULL) return num(env, -ENOMEM);
    memset(b + st->cap, 0, (cap - st->cap) * sizeof *b);
    st->b = b;
    st->cap = cap;
  }
  for (size_t i = 0; i < BOUND_SLOTS; i++) {
    if (!nb.v[i].set) continue;
    if (napi_create_reference(env, argv[i], 1, &nb.ref[i]) != napi_ok) {
      for (size_t j = 0; j < i; j++)
        if (nb.ref[j] != NULL) napi_delete_reference(env, nb.ref[j]);
      return NULL;
    }
  }
  nb.used = 1;
  st->b[id] = nb;
  return num(env, id);
}

static napi_value Unbind(napi_env env, napi_callback_info info) {
  ARGS_STATE(1);
  uint32_t id;
  if (!get_u32(env, argv[0], &id, "id must be a number")) return NULL;
  if (id >= st->cap || !st->b[id].used) return num(env, 0);
  struct bound *b = &st->b[id];
  for (size_t i = 0; i < BOUND_SLOTS; i++)
    if (b->ref[i] != NULL) napi_delete_reference(env, b->ref[i]);
  memset(b, 0, sizeof *b);
  return num(env, 1);
}

/* At teardown the environment releases the references itself; only our memory is left to free. */
static void state_free(napi_env env, void *data, void *hint) {
  struct state *st = data;
  free(st->b);
  free(st);
}

static struct bound *get_bound(napi_env env, struct state *st, napi_value v) {
  uint32_t id;
  if (!get_u32(env, v, &id, "id must be a number")) return NULL;
  if (id >= st->cap || !st->b[id].used) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "no such bound array set (never bound, or unbound)");
    return NULL;
  }
  return &st->b[id];
}

/* Slot `i` of `b` as a typed array of type `t` (-1: any) with at least `min` elements. */
static void *slot(napi_env env, struct bound *b, int i, int t, size_t min, const char *what) {
  struct view *v = &b->v[i];
  if (!v->set || (t >= 0 && v->type != (napi_typedarray_type)t) || v->n < min) {
    throw_type(env, what);
    return NULL;
  }
  return v->p;
}

/* ---- TUN ------------------------------------------------------------------------------------- */

/*
 * tunOpen(name, flags) -> { fd, name } | -errno. `flags` are IFF_* from `constants`.
 * Once open() has succeeded every way out either hands the fd to JS or closes it: a failed
 * Node-API call after the ioctl (an exception pending, a setter on Object.prototype that throws)
 * would otherwise leave an fd that nothing knows about, and with it a live TUN device.
 */
static napi_value TunOpen(napi_env env, napi_callback_info info) {
  ARGS(2);
  char name[IFNAMSIZ];
  int32_t flags;
  if (!get_str(env, argv[0], name, sizeof name, "tunOpen: name must be a string shorter than IFNAMSIZ")) return NULL;
  if (!get_i32(env, argv[1], &flags, "tunOpen: flags must be a number")) return NULL;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return num(env, -errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = (short)flags;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return num(env, -e);
  }
  napi_value out, vfd, vname;
  if (napi_create_object(env, &out) != napi_ok || napi_create_int32(env, fd, &vfd) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &vname) != napi_ok ||
      napi_set_named_property(env, out, "fd", vfd) != napi_ok ||
      napi_set_named_property(env, out, "name", vname) != napi_ok) {
    close(fd);
    return napi_failed(env, "tunOpen: cannot build the result");
  }
  return out;
}

/* tunSetPersist(fd, on) -> 0 | -errno */
static napi_value TunSetPersist(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, on;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &on, "on must be a number"))
    return NULL;
  return result(env, ioctl(fd, TUNSETPERSIST, (unsigned long)on));
}

/*
 * tunSetOffload(fd, flags) -> 0 | -errno: TUNSETOFFLOAD with TUN_F_* `flags` (device-wide): which
 * offloads the kernel may hand this device's reader (checksums left partial, GSO super-packets).
 */
static napi_value TunSetOffload(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, flags;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &flags, "flags must be a number"))
    return NULL;
  return result(env, ioctl(fd, TUNSETOFFLOAD, (unsigned long)(uint32_t)flags));
}

/*
 * tunGetFlags(fd) -> IFF_* flags of the device | -errno (TUNGETIFF). A multi-queue device keeps
 * the flags of its first queue: a later TUNSETIFF attaches with other flags without a word.
 */
static napi_value TunGetFlags(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return num(env, -errno);
  return num(env, (unsigned short)ifr.ifr_flags);
}

/* tunSetQueue(fd, attach) -> 0 | -errno: attaches or detaches one queue of a multi-queue TUN. */
static napi_value TunSetQueue(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, attach;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &attach, "attach must be a number"))
    return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  return result(env, ioctl(fd, TUNSETQUEUE, &ifr));
}

/* ---- sockets --------------------------------------------------------------------------------- */

/* socket(domain, type, protocol) -> fd | -errno; always non-blocking and close-on-exec. */
static napi_value Socket(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t d, t, p;
  if (!get_i32(env, argv[0], &d, "domain must be a number") || !get_i32(env, argv[1], &t, "type must be a number") ||
      !get_i32(env, argv[2], &p, "protocol must be a number"))
    return NULL;
  return fd_result(env, socket(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, p));
}

/*
 * socketpair(domain, type, fds: Int32Array(2)) -> 0 | -errno, both ends non-blocking and
 * close-on-exec. The datapath's warm-up runs its device classes over AF_UNIX pairs.
 */
static napi_value SocketPair(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t d, t;
  int32_t *out;
  size_t n;
  if (!get_i32(env, argv[0], &d, "domain must be a number") || !get_i32(env, argv[1], &t, "type must be a number") ||
      !get_typed(env, argv[2], napi_int32_array, (void **)&out, &n, "fds must be an Int32Array(2)"))
    return NULL;
  if (n < 2) {
    throw_type(env, "fds must be an Int32Array(2)");
    return NULL;
  }
  int sv[2];
  if (socketpair(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return num(env, -errno);
  napi_value r = num(env, 0);
  if (r == NULL) {
    /* The caller sees an exception, not the fds: they must not stay open. */
    close(sv[0]);
    close(sv[1]);
    return napi_failed(env, "socketPair: cannot return");
  }
  out[0] = sv[0];
  out[1] = sv[1];
  return r;
}

/* setsockoptInt(fd, level, name, value) -> 0 | -errno */
static napi_value SetsockoptInt(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, level, name, value;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &level, "level must be a number") ||
      !get_i32(env, argv[2], &name, "name must be a number") || !get_i32(env, argv[3], &value, "value must be a number"))
    return NULL;
  int v = value;
  return result(env, setsockopt(fd, level, name, &v, sizeof v));
}

/* setsockoptBuf(fd, level, name, bytes) -> 0 | -errno */
static napi_value SetsockoptBuf(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, level, name;
  uint8_t *p;
  size_t n;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &level, "level must be a number") ||
      !get_i32(env, argv[2], &name, "name must be a number") ||
      !get_bytes(env, argv[3], &p, &n, "value must be a Buffer or typed array"))
    return NULL;
  return result(env, setsockopt(fd, level, name, p, (socklen_t)n));
}

/* getsockoptInt(fd, level, name) -> value | -errno */
static napi_value GetsockoptInt(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, level, name;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &level, "level must be a number") ||
      !get_i32(env, argv[2], &name, "name must be a number"))
    return NULL;
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) < 0) return num(env, -errno);
  return num(env, v);
}

/*
 * getsockoptBuf(fd, level, name, buf) -> option length | -errno: getsockopt into `buf` (a typed
 * array, e.g. struct tpacket_stats for PACKET_STATISTICS), decoded by the caller.
 */
static napi_value GetsockoptBuf(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, level, name;
  uint8_t *buf;
  size_t len;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &level, "level must be a number") ||
      !get_i32(env, argv[2], &name, "name must be a number") ||
      !get_bytes(env, argv[3], &buf, &len, "buf must be a Buffer or typed array"))
    return NULL;
  socklen_t sl = (socklen_t)len;
  if (getsockopt(fd, level, name, buf, &sl) < 0) return num(env, -errno);
  return num(env, sl);
}

/* setsockoptMreq6(fd, name, addr16, ifindex) -> 0 | -errno: IPV6_JOIN_ANYCAST and friends. */
static napi_value SetsockoptMreq6(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, name, ifindex;
  uint8_t *addr;
  size_t n;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &name, "name must be a number") ||
      !get_bytes(env, argv[2], &addr, &n, "addr must be 16 bytes") ||
      !get_i32(env, argv[3], &ifindex, "ifindex must be a number"))
    return NULL;
  if (n != 16) return throw_type(env, "addr must be 16 bytes");
  struct ipv6_mreq mreq;
  memset(&mreq, 0, sizeof mreq);
  memcpy(&mreq.ipv6mr_multiaddr, addr, 16);
  mreq.ipv6mr_interface = (unsigned)ifindex;
  return result(env, setsockopt(fd, IPPROTO_IPV6, name, &mreq, sizeof mreq));
}

/* attachFilter(fd, program) -> 0 | -errno; `program` is classic BPF, 8 bytes per instruction. */
static napi_value AttachFilter(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t *p;
  size_t n;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") ||
      !get_bytes(env, argv[1], &p, &n, "program must be a Buffer or typed array"))
    return NULL;
  if (n == 0 || n % sizeof(struct sock_filter) != 0 || n / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return throw_type(env, "program must be 1..4096 instructions of 8 bytes");
  /* The kernel copies the program during the call, so the Buffer need not outlive it. */
  struct sock_fprog prog = {.len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (void *)p};
  return result(env, setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog));
}

/*
 * bpf(cmd, attr, ptrs) -> result | -errno: the bpf(2) system call with `attr` (a union bpf_attr
 * built in TypeScript; its layout is the kernel's stable ABI). `ptrs` lists [offset, typed array
 * or null, ...]: the address of each array is written into attr at that offset, as the 64-bit
 * pointers the command takes (instructions, license, log, keys, values, packets). The kernel reads
 * and writes those arrays only during the call.
 */
static napi_value Bpf(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t cmd;
  uint8_t *attr;
  size_t n;
  if (!get_i32(env, argv[0], &cmd, "cmd must be a number") ||
      !get_bytes(env, argv[1], &attr, &n, "attr must be a Buffer or typed array"))
    return NULL;
  uint32_t count;
  bool is;
  if (napi_is_array(env, argv[2], &is) != napi_ok || !is) return throw_type(env, "ptrs must be an array");
  CHECK(napi_get_array_length(env, argv[2], &count));
  if (count % 2 != 0) return throw_type(env, "ptrs must be [offset, array, ...] pairs");
  for (uint32_t i = 0; i < count; i += 2) {
    napi_value o, a;
    int32_t off;
    CHECK(napi_get_element(env, argv[2], i, &o));
    CHECK(napi_get_element(env, argv[2], i + 1, &a));
    if (!get_i32(env, o, &off, "pointer offset must be a number")) return NULL;
    if (off < 0 || (size_t)off + 8 > n || off % 8 != 0) return throw_type(env, "pointer offset outside attr");
    uint64_t ptr = 0;
    if (!is_nullish(env, a)) {
      struct view w;
      if (!get_view(env, a, &w, "pointer target must be a Buffer or typed array")) return NULL;
      ptr = (uint64_t)(uintptr_t)w.p;
    }
    memcpy(attr + off, &ptr, sizeof ptr);
  }
  /*
   * Not fd_result(): whether the result is an fd depends on cmd (BPF_PROG_LOAD: yes;
   * BPF_MAP_LOOKUP_ELEM: no, 0, which is also stdin's number), and closing a number that is not
   * ours would be worse than the leak. num() makes a small integer and fails only with a broken
   * environment.
   */
  return result(env, syscall(__NR_bpf, cmd, attr, (unsigned int)n));
}

/* bindPacket(fd, protocol, ifindex) -> 0 | -errno; protocol in host order (ETH_P_IPV6). */
static napi_value BindPacket(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, proto, ifindex;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &proto, "protocol must be a number") ||
      !get_i32(env, argv[2], &ifindex, "ifindex must be a number"))
    return NULL;
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons((uint16_t)proto);
  sll.sll_ifindex = ifindex;
  return result(env, bind(fd, (struct sockaddr *)&sll, sizeof sll));
}

/* bindNetlink(fd, groups) -> 0 | -errno; the kernel assigns the port id. */
static napi_value BindNetlink(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint32_t groups;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_u32(env, argv[1], &groups, "groups must be a number"))
    return NULL;
  struct sockaddr_nl snl;
  memset(&snl, 0, sizeof snl);
  snl.nl_family = AF_NETLINK;
  snl.nl_groups = groups;
  return result(env, bind(fd, (struct sockaddr *)&snl, sizeof snl));
}

/* netlinkPortId(fd) -> port id | -errno (getsockname). */
static napi_value NetlinkPortId(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  struct sockaddr_nl snl;
  socklen_t len = sizeof snl;
  memset(&snl, 0, sizeof snl);
  if (getsockname(fd, (struct sockaddr *)&snl, &len) < 0) return num(env, -errno);
  return num(env, snl.nl_pid);
}

/* The arguments of every one-buffer call: (fd, bytes) and, when `flags` is wanted, an optional flags. */
static int get_io_args(napi_env env, size_t argc, napi_value *argv, int32_t *fd, uint8_t **p, size_t *n,
                       int32_t *flags) {
  if (!get_i32(env, argv[0], fd, "fd must be a number") ||
      !get_bytes(env, argv[1], p, n, "data must be a Buffer or typed array"))
    return 0;
  if (flags == NULL) return 1;
  *flags = 0;
  return argc <= 2 || is_nullish(env, argv[2]) || get_i32(env, argv[2], flags, "flags must be a number");
}

/* Runs a system call again when a signal interrupted it. */
#define RETRY(rc, call)                                                                             \
  do rc = (call);                                                                                   \
  while (rc < 0 && errno == EINTR)

/* send(fd, bytes, flags) -> bytes sent | -errno */
static napi_value Send(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, flags;
  uint8_t *p;
  size_t n;
  if (!get_io_args(env, argc, argv, &fd, &p, &n, &flags)) return NULL;
  long rc;
  RETRY(rc, send(fd, p, n, flags));
  return result(env, rc);
}

/* sendto(fd, bytes, name) -> bytes sent | -errno; `name` is a packed sockaddr (see sockaddrIn6 layout). */
static napi_value SendTo(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd;
  uint8_t *p, *name;
  size_t n, namelen;
  if (!get_io_args(env, argc, argv, &fd, &p, &n, NULL) ||
      !get_bytes(env, argv[2], &name, &namelen, "name must be a Buffer or typed array"))
    return NULL;
  long rc;
  RETRY(rc, sendto(fd, p, n, 0, (struct sockaddr *)name, (socklen_t)namelen));
  return result(env, rc);
}

/* recv(fd, bytes, flags) -> bytes received (the full length with MSG_TRUNC) | -errno */
static napi_value Recv(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, flags;
  uint8_t *p;
  size_t n;
  if (!get_io_args(env, argc, argv, &fd, &p, &n, &flags)) return NULL;
  long rc;
  RETRY(rc, recv(fd, p, n, flags));
  return result(env, rc);
}

/* read(fd, bytes) / write(fd, bytes) -> bytes | -errno */
static napi_value Read(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t *p;
  size_t n;
  if (!get_io_args(env, argc, argv, &fd, &p, &n, NULL)) return NULL;
  long rc;
  RETRY(rc, read(fd, p, n));
  return result(env, rc);
}

static napi_value Write(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t *p;
  size_t n;
  if (!get_io_args(env, argc, argv, &fd, &p, &n, NULL)) return NULL;
  long rc;
  RETRY(rc, write(fd, p, n));
  return result(env, rc);
}

/* close(fd) -> 0 | -errno */
static napi_value Close(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  return result(env, close(fd));
}

/*
 * madvise(addr, length, advice) -> 0 | -errno. `addr` and `length` are BigInts (addresses need
 * more than a double's 53 bits under 5-level paging); `advice` is an MADV_* from `constants`.
 */
static napi_value Madvise(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint64_t addr, len;
  bool lossless;
  int32_t advice;
  if (napi_get_value_bigint_uint64(env, argv[0], &addr, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, NULL, "addr must be a BigInt");
    return NULL;
  }
  if (napi_get_value_bigint_uint64(env, argv[1], &len, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, NULL, "length must be a BigInt");
    return NULL;
  }
  if (!get_i32(env, argv[2], &advice, "advice must be a number")) return NULL;
  return result(env, madvise((void *)(uintptr_t)addr, (size_t)len, advice));
}

/*
 * pollMany(id, timeoutMs) -> ready count (0: timeout or EINTR) |
 * -errno: one blocking poll(2) for POLLIN on every fd of the bound set [fds, revents] (negative fds
 * are skipped, as poll(2) does), each fd's revents written to revents[i]. What a datapath worker
 * sleeps in.
 */
static napi_value PollMany(napi_env env, napi_callback_info info) {
  ARGS_STATE(2);
  struct bound *bd;
  int32_t *fds, *rev, timeout;
  if (!(bd = get_bound(env, st, argv[0])) ||
      !(fds = slot(env, bd, 0, napi_int32_array, 0, "slot 0 (fds) must be an Int32Array")) ||
      !(rev = slot(env, bd, 1, napi_int32_array, bd->v[0].n, "slot 1 (revents) must be an Int32Array as long as fds")) ||
      !get_i32(env, argv[1], &timeout, "timeoutMs must be a number"))
    return NULL;
  size_t n = bd->v[0].n;
  if (n > 16) return throw_type(env, "at most 16 fds");
  struct pollfd p[16];
  for (size_t i = 0; i < n; i++) p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
  int rc = poll(p, n, timeout);
  if (rc < 0) {
    if (errno != EINTR) return num(env, -errno);
    rc = 0;
  }
  for (size_t i = 0; i < n; i++) rev[i] = rc > 0 ? p[i].revents : 0;
  return num(env, rc);
}

/* ---- eventfd --------------------------------------------------------------------------------- */

/* eventfd(initval, semaphore) -> fd | -errno; non-blocking, close-on-exec. */
static napi_value EventFd(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint32_t init;
  int32_t sem = 0;
  if (!get_u32(env, argv[0], &init, "initval must be a number")) return NULL;
  if (argc > 1 && !is_nullish(env, argv[1]) && !get_i32(env, argv[1], &sem, "semaphore must be a number")) return NULL;
  return fd_result(env, eventfd(init, EFD_NONBLOCK | EFD_CLOEXEC | (sem ? EFD_SEMAPHORE : 0)));
}

/* eventfdWrite(fd, value) -> 0 | -errno */
static napi_value EventFdWrite(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  double v;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (napi_get_value_double(env, argv[1], &v) != napi_ok || v < 1 || v > 9007199254740991.0)
    return throw_type(env, "value must be a positive safe integer");
  uint64_t u = (uint64_t)v;
  long rc;
  RETRY(rc, write(fd, &u, sizeof u));
  return num(env, rc < 0 ? -errno : 0);
}

/* eventfdRead(fd) -> counter (> 0) | -errno (-EAGAIN when zero) */
static napi_value EventFdRead(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  uint64_t u = 0;
  long rc;
  RETRY(rc, read(fd, &u, sizeof u));
  if (rc < 0) return num(env, -errno);
  return num(env, (double)u);
}

/* setns(fd, CLONE_NEWNET) -> 0 | -errno: moves the calling thread into a network namespace. */
static napi_value SetNetns(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  return result(env, setns(fd, CLONE_NEWNET));
}

/* ---- credentials ----------------------------------------------------------------------------- */

/*
 * dropPrivileges(uid, gid, caps) -> 0 | -errno: becomes uid:gid with no supplementary groups,
 * keeping only the capabilities numbered in `caps` (permitted, effective, inheritable and ambient,
 * so that programs it spawns, nft, hold them too), and removes every other one from the bounding
 * set. Only the system calls; the policy is in src/sys/privileges.ts.
 *
 * Threads: setgroups, setresgid and setresuid go through glibc, whose setxid broadcast changes the
 * ids of every thread of the process (the raw system calls would change the calling thread only,
 * leaving V8's and libuv's threads root). The capability calls (capset, prctl) act on the calling
 * thread alone: the others lose all capabilities at the uid change (keep-caps is per thread), and
 * threads started later (the datapath workers) inherit this thread's set. So call it from the main
 * thread, before the workers start. A failure part-way leaves the process half changed: the caller
 * must exit.
 */
static napi_value DropPrivileges(napi_env env, napi_callback_info info) {
  ARGS(3);
  uint32_t uid, gid, count;
  if (!get_u32(env, argv[0], &uid, "uid must be a number")) return NULL;
  if (!get_u32(env, argv[1], &gid, "gid must be a number")) return NULL;
  bool is;
  CHECK(napi_is_array(env, argv[2], &is));
  if (!is) return throw_type(env, "caps must be an array of capability numbers");
  CHECK(napi_get_array_length(env, argv[2], &count));
  uint64_t keep = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value el;
    uint32_t cap;
    CHECK(napi_get_element(env, argv[2], i, &el));
    if (!get_u32(env, el, &cap, "caps must be an array of capability numbers")) return NULL;
    if (cap > 63) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "capability number out of range");
      return NULL;
    }
    keep |= 1ULL << cap;
  }
  /* The bounding set first: dropping from it needs CAP_SETPCAP, which goes with root. */
  for (int cap = 0; cap <= 63; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      return num(env, -errno);
    }
  }
  /* Without keep-caps, leaving uid 0 empties the permitted set. */
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return num(env, -errno);
  if (setgroups(0, NULL) < 0) return num(env, -errno);
  if (setresgid(gid, gid, gid) < 0) return num(env, -errno);
  if (setresuid(uid, uid, uid) < 0) return num(env, -errno);
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    uint32_t part = (uint32_t)(keep >> (32 * i));
    data[i].permitted = data[i].effective = data[i].inheritable = part;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return num(env, -errno);
  /* Ambient needs each capability permitted and inheritable, which capset just made them. */
  for (int cap = 0; cap <= 63; cap++) {
    if (!(keep & (1ULL << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return num(env, -errno);
  }
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return num(env, -errno);
  return num(env, 0);
}

/* ---- interfaces ------------------------------------------------------------------------------ */

/* ifNameToIndex(name) -> index | -errno */
static napi_value IfNameToIndex(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[IFNAMSIZ];
  if (!get_str(env, argv[0], name, sizeof name, "name must be a string shorter than IFNAMSIZ")) return NULL;
  unsigned idx = if_nametoindex(name);
  return num(env, idx == 0 ? -errno : (double)idx);
}

/* mallopt(param, value) -> 1 | 0: mallopt(3). */
static napi_value Mallopt(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t param, value;
  if (!get_i32(env, argv[0], &param, "param must be a number")) return NULL;
  if (!get_i32(env, argv[1], &value, "value must be a number")) return NULL;
  return num(env, mallopt(param, value));
}

/* ifIndexToName(index) -> name | -errno */
static napi_value IfIndexToName(napi_env env, napi_callback_info info) {
  ARGS(1);
  uint32_t idx;
  if (!get_u32(env, argv[0], &idx, "index must be a number")) return NULL;
  char name[IF_NAMESIZE];
  if (if_indextoname(idx, name) == NULL) return num(env, -errno);
  napi_value r;
  CHECK(napi_create_string_utf8(env, name, strnlen(name, IF_NAMESIZE), &r));
  return r;
}

/* ---- batched I/O ----------------------------------------------------------------------------- */
/*
 * All batch calls share the layout of src/core/batch.ts: slot i is data[i*stride, (i+1)*stride);
 * offs[i] / lens[i] locate packet i; disp[i] says where a translator output goes. Their bound set
 * is [data, offs, lens, disp, stats, names]: the reads use the first three; stats (optional,
 * Int32Array(2): failed packets, last errno) and names belong to the writes.
 */

struct batch {
  uint8_t *data;
  size_t data_len;
  uint32_t *offs, *lens;
  size_t offs_n, lens_n;
  uint8_t *disp;
  size_t disp_n;
  int32_t *stats; /* optional [failed packets, last errno] */
};

static int get_batch(napi_env env, struct bound *bd, struct batch *b, int with_disp) {
  if (!(b->data = slot(env, bd, 0, -1, 0, "slot 0 (data) must be a typed array")) ||
      !(b->offs = slot(env, bd, 1, napi_uint32_array, 0, "slot 1 (offs) must be a Uint32Array")) ||
      !(b->lens = slot(env, bd, 2, napi_uint32_array, 0, "slot 2 (lens) must be a Uint32Array")))
    return 0;
  b->data_len = bd->v[0].bytes;
  b->offs_n = bd->v[1].n;
  b->lens_n = bd->v[2].n;
  b->disp = NULL;
  b->disp_n = 0;
  b->stats = NULL;
  if (!with_disp) return 1;
  if (!(b->disp = slot(env, bd, 3, napi_uint8_array, 0, "slot 3 (disp) must be a Uint8Array"))) return 0;
  b->disp_n = bd->v[3].n;
  if (bd->v[4].set && !(b->stats = slot(env, bd, 4, napi_int32_array, 2, "slot 4 (stats) must be an Int32Array(2)")))
    return 0;
  return 1;
}

static void fail(struct batch *b, int n, int err) {
  if (b->stats && n > 0) {
    b->stats[0] += n;
    b->stats[1] = err;
  }
}

/*
 * Read-side arguments: (fd, id, start, max, stride, headroom, base). Slot i is
 * data[base + i*stride, base + (i+1)*stride): `base` is PacketBatch.base, for batches carved out of
 * a larger arena.
 */
static int get_read_args(napi_env env, struct state *st, napi_value *argv, int32_t *fd, struct batch *b,
                         uint32_t *start, uint32_t *max, uint32_t *stride, uint32_t *headroom, uint32_t *base) {
  struct bound *bd;
  if (!get_i32(env, argv[0], fd, "fd must be a number") || !(bd = get_bound(env, st, argv[1])) ||
      !get_batch(env, bd, b, 0) || !get_u32(env, argv[2], start, "start must be a number") ||
      !get_u32(env, argv[3], max, "max must be a number") || !get_u32(env, argv[4], stride, "stride must be a number") ||
      !get_u32(env, argv[5], headroom, "headroom must be a number") ||
      !get_u32(env, argv[6], base, "base must be a number"))
    return 0;
  uint64_t end = (uint64_t)*start + *max;
  if (end > b->offs_n || end > b->lens_n || *base + end * *stride > b->data_len || *headroom >= *stride) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "batch slots out of range (start + max, stride, headroom, base)");
    return 0;
  }
  return 1;
}

/*
 * readBatch(fd, id, start, max, stride, headroom, base) -> packets read | -errno
 * read() into slots start.. until EAGAIN or `max` packets: a TUN has no recvmmsg. An error after
 * the first packet ends the batch and shows up again on the next call.
 */
static napi_value ReadBatch(napi_env env, napi_callback_info info) {
  ARGS_STATE(7);
  int32_t fd;
  struct batch b;
  uint32_t start, max, stride, headroom, base;
  if (!get_read_args(env, st, argv, &fd, &b, &start, &max, &stride, &headroom, &base)) return NULL;
  uint32_t i = start, end = start + max;
  for (; i < end; i++) {
    size_t off = base + (size_t)i * stride + headroom;
    ssize_t n;
    RETRY(n, read(fd, b.data + off, stride - headroom));
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (i == start) return num(env, -errno);
      break;
    }
    if (n == 0) break;
    b.offs[i] = (uint32_t)off;
    b.lens[i] = (uint32_t)n;
  }
  return num(env, i - start);
}

/*
 * recvBatch(fd, id, start, max, stride, headroom, base) -> packets | -errno
 * recvmmsg with MSG_TRUNC, so lens[i] is the full length even when it did not fit the slot: the
 * caller must drop packets with lens[i] > stride - headroom.
 */
static napi_value RecvBatch(napi_env env, napi_callback_info info) {
  ARGS_STATE(7);
  int32_t fd;
  struct batch b;
  uint32_t start, max, stride, headroom, base;
  if (!get_read_args(env, st, argv, &fd, &b, &start, &max, &stride, &headroom, &base)) return NULL;
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  uint32_t got = 0;
  while (got < max) {
    uint32_t want = max - got < MMSG_CHUNK ? max - got : MMSG_CHUNK;
    memset(msgs, 0, sizeof(msgs[0]) * want);
    for (uint32_t k = 0; k < want; k++) {
      size_t off = base + (size_t)(start + got + k) * stride + headroom;
      iov[k].iov_base = b.data + off;
      iov[k].iov_len = stride - headroom;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(fd, msgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || got > 0) break;
      return num(env, -errno);
    }
    for (int k = 0; k < r; k++) {
      uint32_t i = start + got + k;
      b.offs[i] = (uint32_t)(base + (size_t)i * stride + headroom);
      b.lens[i] = msgs[k].msg_len;
    }
    got += (uint32_t)r;
    if ((uint32_t)r < want) break;
  }
  return num(env, got);
}

/* Write-side arguments: (fd, id, start, count, wantDisp, ...). */
static int get_write_args(napi_env env, struct state *st, napi_value *argv, int32_t *fd, struct bound **bd,
                          struct batch *b, uint32_t *start, uint32_t *count, int32_t *want) {
  if (!get_i32(env, argv[0], fd, "fd must be a number") || !(*bd = get_bound(env, st, argv[1])) ||
      !get_batch(env, *bd, b, 1) || !get_u32(env, argv[2], start, "start must be a number") ||
      !get_u32(env, argv[3], count, "count must be a number") ||
      !get_i32(env, argv[4], want, "wantDisp must be a number (-1 for all)"))
    return 0;
  uint64_t end = (uint64_t)*start + *count;
  if (end > b->offs_n || end > b->lens_n || end > b->disp_n) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "batch slots out of range (start + count)");
    return 0;
  }
  return 1;
}

static int slot_ok(struct batch *b, uint32_t i) {
  return b->lens[i] != 0 && (uint64_t)b->offs[i] + b->lens[i] <= b->data_len;
}

static int selected(struct batch *b, uint32_t i, int32_t want) {
  return slot_ok(b, i) && (want < 0 || b->disp[i] == (uint8_t)want);
}

/*
 * The errno policy of both batch writers, writeBatch (write(2), a TUN) and sendBatch (sendmmsg(2),
 * the raw socket); the one place it is decided. src/sys/errors.ts (isClosedErrno) and the write
 * methods of src/sys/tun.ts and src/sys/raw6.ts act on it; `writeErrnoClass` exports it so a test
 * holds the two sides together.
 *
 *   EINTR  the call is made again; nothing is counted.
 *   skip   the kernel refused this packet only: EMSGSIZE, EINVAL (a TUN's malformed packet),
 *          ENETUNREACH, EHOSTUNREACH, EACCES, EPERM (a firewall rule), ... every errno not listed
 *          below. It is counted and the batch goes on with the next packet.
 *   end    no packet would go out now, but the fd is fine: EAGAIN (queue or socket buffer full),
 *          ENOBUFS and ENOMEM (the kernel is short of memory or its qdisc dropped), ENETDOWN and
 *          EIO (the device is down: a socket says ENETDOWN, a TUN's write EIO), EPIPE (a
 *          stand-in's peer is gone). Trying the rest would fail the same way, one system call
 *          each: this packet and every later selected one are counted, and the batch ends. clatd
 *          drops what the kernel will not take now; it never queues.
 *   fatal  the fd or its device is gone for good: EBADF, EBADFD (a TUN whose device was
 *          deleted), ENODEV, ENXIO. Counted and ended like `end`; the caller closes (ClosedError).
 *
 * Result: the packets written; when none was, -errno of the failure that ended the batch (or of
 * the last skipped packet), 0 when nothing was selected. A fatal errno met after some packets went
 * out is not reported by this call, so that the count stays exact; it is sticky, and the next call
 * (or read) on the fd returns it.
 */
enum { WRITE_SKIP = 0, WRITE_END = 1, WRITE_FATAL = 2 };

static int write_errno_class(int e) {
  switch (e) {
    case EBADF:
    case EBADFD:
    case ENODEV:
    case ENXIO:
      return WRITE_FATAL;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
    case ENOMEM:
    case ENETDOWN:
    case EIO:
    case EPIPE:
      return WRITE_END;
    default:
      return WRITE_SKIP;
  }
}

/* writeErrnoClass(errno) -> 0 skip | 1 end | 2 fatal: the policy above, for the tests. */
static napi_value WriteErrnoClass(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t e;
  if (!get_i32(env, argv[0], &e, "errno must be a number")) return NULL;
  return num(env, write_errno_class(e));
}

/*
 * A write failed with `err` at selected packet `i` (of `end`): counts it, and when the policy ends
 * the batch also every selected packet after it. Returns whether the batch ends.
 */
static int write_failed(struct batch *b, int err, uint32_t i, uint32_t end, int32_t want) {
  if (write_errno_class(err) == WRITE_SKIP) {
    fail(b, 1, err);
    return 0;
  }
  uint32_t n = 1;
  for (uint32_t j = i + 1; j < end; j++)
    if (selected(b, j, want)) n++;
  fail(b, (int)n, err);
  return 1;
}

/*
 * writeBatch(fd, id, start, count, wantDisp[, vnetHdr]) -> packets written | -errno
 * write() each packet whose disp equals wantDisp (-1: all) and whose length is not 0; failures as
 * the errno policy above says. With vnetHdr 1 (a TUN opened with IFF_VNET_HDR), slot 5 of the
 * bound set holds a virtio_net_hdr per slot, and packet i goes out behind vnet[i*10, +10) in one
 * writev.
 */
static napi_value WriteBatch(napi_env env, napi_callback_info info) {
  ARGS_STATE(6);
  int32_t fd, want, with_vnet = 0;
  struct bound *bd;
  struct batch b;
  uint32_t start, count;
  if (!get_write_args(env, st, argv, &fd, &bd, &b, &start, &count, &want)) return NULL;
  if (argc > 5 && !is_nullish(env, argv[5]) && !get_i32(env, argv[5], &with_vnet, "vnetHdr must be a number"))
    return NULL;
  uint8_t *vnet = NULL;
  if (with_vnet) {
    if (!(vnet = slot(env, bd, 5, napi_uint8_array, 0, "slot 5 (vnet headers) must be a Uint8Array"))) return NULL;
    if ((uint64_t)(start + count) * sizeof(struct virtio_net_hdr) > bd->v[5].bytes) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "vnet headers too small for start + count");
      return NULL;
    }
  }
  uint32_t done = 0, end = start + count;
  int last = 0;
  for (uint32_t i = start; i < end; i++) {
    if (!selected(&b, i, want)) continue;
    ssize_t n;
    if (vnet != NULL) {
      struct iovec iov[2] = {{vnet + (size_t)i * sizeof(struct virtio_net_hdr), sizeof(struct virtio_net_hdr)},
                             {b.data + b.offs[i], b.lens[i]}};
      RETRY(n, writev(fd, iov, 2));
    } else
      RETRY(n, write(fd, b.data + b.offs[i], b.lens[i]));
    if (n >= 0) {
      done++;
      continue;
    }
    last = errno;
    if (write_failed(&b, last, i, end, want)) break;
  }
  return num(env, done == 0 && last != 0 ? (double)-last : (double)done);
}

/*
 * sendBatch(fd, id, start, count, wantDisp, nameLen) -> packets sent | -errno
 * sendmmsg of the selected packets; packet i is sent to the sockaddr at names[i*nameLen, +nameLen)
 * (slot 5 of the bound set, filled in by the caller). Failures as the errno policy above says:
 * sendmmsg stops at the first packet the kernel refuses and returns the count before it, so the
 * next call starts at that packet and reports its errno.
 */
static napi_value SendBatch(napi_env env, napi_callback_info info) {
  ARGS_STATE(6);
  int32_t fd, want;
  struct bound *bd;
  struct batch b;
  uint32_t start, count, namelen;
  uint8_t *names;
  size_t names_len;
  if (!get_write_args(env, st, argv, &fd, &bd, &b, &start, &count, &want) ||
      !(names = slot(env, bd, 5, napi_uint8_array, 0, "slot 5 (names) must be a Uint8Array")) ||
      !get_u32(env, argv[5], &namelen, "nameLen must be a number"))
    return NULL;
  names_len = bd->v[5].bytes;
  if ((uint64_t)(start + count) * namelen > names_len || namelen > sizeof(struct sockaddr_storage)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "names too small for start + count");
    return NULL;
  }
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  uint32_t idx[MMSG_CHUNK]; /* the batch slot of each message */
  uint32_t done = 0, i = start, end = start + count;
  int last = 0, stop = 0;
  while (i < end && !stop) {
    int n = 0;
    for (; i < end && n < MMSG_CHUNK; i++) {
      if (!selected(&b, i, want)) continue;
      iov[n].iov_base = b.data + b.offs[i];
      iov[n].iov_len = b.lens[i];
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      msgs[n].msg_hdr.msg_name = names + (size_t)i * namelen;
      msgs[n].msg_hdr.msg_namelen = namelen;
      idx[n] = i;
      n++;
    }
    int k = 0;
    while (k < n) {
      int r = sendmmsg(fd, msgs + k, (unsigned)(n - k), MSG_DONTWAIT);
      if (r > 0) {
        k += r;
        done += (uint32_t)r;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      last = r < 0 ? errno : EIO; /* 0 messages sent without an error: never seen, treated as EIO */
      if (write_failed(&b, last, idx[k], end, want)) {
        stop = 1;
        break;
      }
      k++;
    }
  }
  return num(env, done == 0 && last != 0 ? (double)-last : (double)done);
}

/* ---- uv_poll --------------------------------------------------------------------------------- */
/*
 * pollStart(fd, events, callback) -> handle | -errno; pollStop(handle).
 * The callback runs as callback.call(handle, status, events) on the loop that started it (the main
 * thread's or a worker's). It is level-triggered: it runs again while the fd stays readable. On a
 * poll error (status < 0), or when the callback throws, the poll stops itself first, so an
 * unhandled condition can never spin. A stopped poll holds no reference on the loop.
 */

enum { POLL_ACTIVE, POLL_CLOSING, POLL_CLOSED };

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_ref self;
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  int state;
  int teardown; /* the environment is going away: no more Node-API calls but the hook removal */
  int js_alive;
} clat_poll;

/*
 * The uv close callback: the last step of every stop. References and the async context are
 * released here, never inside the JS callback that may have asked for the stop.
 */
static void poll_closed(uv_handle_t *h) {
  clat_poll *p = h->data;
  p->state = POLL_CLOSED;
  if (!p->teardown) {
    if (p->callback != NULL) napi_delete_reference(p->env, p->callback);
    if (p->actx != NULL) napi_async_destroy(p->env, p->actx);
    if (p->self != NULL) napi_delete_reference(p->env, p->self);
  }
  if (p->hook != NULL) napi_remove_async_cleanup_hook(p->hook);
  p->hook = NULL;
  if (!p->js_alive) free(p);
}

static void poll_shutdown(clat_poll *p) {
  if (p->state != POLL_ACTIVE) return;
  p->state = POLL_CLOSING;
  uv_poll_stop(&p->handle);
  uv_close((uv_handle_t *)&p->handle, poll_closed);
}

/* The environment (main thread or worker) is being torn down with the poll still open. */
static void poll_teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  clat_poll *p = arg;
  p->teardown = 1;
  poll_shutdown(p); /* a poll already closing removes the hook in poll_closed */
}

static void poll_finalize(napi_env env, void *data, void *hint) {
  clat_poll *p = data;
  p->js_alive = 0;
  if (p->state == POLL_CLOSED) free(p);
}

static void poll_event(uv_poll_t *h, int status, int events) {
  clat_poll *p = h->data;
  if (p->state != POLL_ACTIVE) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, self, args[2], ret;
  if (status < 0) uv_poll_stop(&p->handle); /* never spin on a poll error */
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok &&
      napi_get_reference_value(env, p->self, &self) == napi_ok && napi_create_int32(env, status, &args[0]) == napi_ok &&
      napi_create_int32(env, events, &args[1]) == napi_ok) {
    napi_status s = napi_make_callback(env, p->actx, self, cb, 2, args, &ret);
    if (s != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      /* Stop first: a level-triggered poll whose handler throws would otherwise spin. */
      poll_shutdown(p);
      napi_value err;
      if (pending && napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static napi_value PollStart(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, events;
  napi_valuetype t;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &events, "events must be a number"))
    return NULL;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_type(env, "callback must be a function");
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  clat_poll *p = calloc(1, sizeof *p);
  if (p == NULL) return num(env, -ENOMEM);
  int rc = uv_poll_init(loop, &p->handle, fd);
  if (rc < 0) {
    free(p); /* uv_poll_init failed before registering the handle with the loop */
    return num(env, rc);
  }
  p->handle.data = p;
  p->env = env;
  p->js_alive = 1;
  p->state = POLL_ACTIVE;
  napi_value self, name;
  if (napi_create_object(env, &self) != napi_ok || napi_create_reference(env, argv[2], 1, &p->callback) != napi_ok ||
      napi_create_reference(env, self, 1, &p->self) != napi_ok ||
      napi_create_string_utf8(env, "clatd:poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &p->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, poll_teardown, p, &p->hook) != napi_ok ||
      napi_wrap(env, self, p, poll_finalize, NULL, NULL) != napi_ok) {
    /* Only on out-of-memory: close the never-started handle; nothing in JS points at `p`. */
    p->js_alive = 0;
    poll_shutdown(p);
    return NULL;
  }
  rc = uv_poll_start(&p->handle, events, poll_event);
  if (rc < 0) {
    poll_shutdown(p);
    return num(env, rc);
  }
  return self;
}

static napi_value PollStop(napi_env env, napi_callback_info info) {
  ARGS(1);
  clat_poll *p;
  if (napi_unwrap(env, argv[0], (void **)&p) != napi_ok) return throw_type(env, "not a poll handle");
  poll_shutdown(p);
  return NULL;
}

/* ---- module ---------------------------------------------------------------------------------- */

/*
 * A constant for `constants`. Failure is reported, not ignored: a constant missing from the object
 * reads as undefined in TypeScript, which bit operations turn into 0 without a word (a TUN opened
 * without IFF_NO_PI, say). Module init fails instead, and src/sys/addon.ts checks the table again.
 */
static int set_int(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_named_property(env, obj, name, n) == napi_ok;
}

static napi_value make_constants(napi_env env) {
  napi_value c;
  if (napi_create_object(env, &c) != napi_ok) return NULL;
  int ok = 1;
#define K(x) ok &= set_int(env, c, #x, x)
  K(IFF_TUN);
  K(IFF_NO_PI);
  K(IFF_MULTI_QUEUE);
  K(IFF_TUN_EXCL);
  K(IFF_VNET_HDR);
  K(TUN_F_CSUM);
  K(TUN_F_TSO4);
  K(TUN_F_TSO6);
  K(TUN_F_TSO_ECN);
  K(TUN_F_USO4);
  K(TUN_F_USO6);
  K(IFNAMSIZ);
  K(AF_INET6);
  K(AF_PACKET);
  K(AF_NETLINK);
  K(AF_UNIX);
  K(SOCK_RAW);
  K(SOCK_DGRAM);
  K(SOCK_SEQPACKET);
  K(IPPROTO_RAW);
  K(IPPROTO_IPV6);
  K(ETH_P_IPV6);
  K(ETH_P_ALL);
  K(ETH_HLEN);
  K(SOL_SOCKET);
  K(SO_BINDTODEVICE);
  K(SO_RCVBUF);
  K(SO_SNDBUF);
  K(SO_RCVBUFFORCE);
  K(SO_SNDBUFFORCE);
  K(SO_MARK);
  K(SO_ATTACH_FILTER);
  K(SOL_PACKET);
  K(PACKET_AUXDATA);
  K(PACKET_VNET_HDR);
  K(PACKET_IGNORE_OUTGOING);
  K(PACKET_FANOUT);
  K(PACKET_FANOUT_HASH);
  K(PACKET_FANOUT_CPU);
  K(PACKET_FANOUT_FLAG_DEFRAG);
  K(PACKET_STATISTICS);
  K(IPV6_JOIN_ANYCAST);
  K(IPV6_LEAVE_ANYCAST);
  K(IPV6_MULTICAST_LOOP);
  K(IPV6_MULTICAST_HOPS);
  K(IPV6_UNICAST_HOPS);
  K(IPV6_MULTICAST_IF);
  K(NETLINK_ROUTE);
  K(SOL_NETLINK);
  K(NETLINK_ADD_MEMBERSHIP);
  K(NETLINK_EXT_ACK);
  K(NETLINK_GET_STRICT_CHK);
  K(NETLINK_NO_ENOBUFS);
  K(MSG_TRUNC);
  K(MSG_PEEK);
  K(MADV_DONTNEED);
  K(MSG_DONTWAIT);
  K(POLLIN);
  K(POLLOUT);
  K(POLLERR);
  K(POLLHUP);
  K(POLLNVAL);
  K(UV_READABLE);
  K(UV_WRITABLE);
  K(VIRTIO_NET_HDR_F_NEEDS_CSUM);
  K(VIRTIO_NET_HDR_F_DATA_VALID);
  K(VIRTIO_NET_HDR_GSO_NONE);
  K(VIRTIO_NET_HDR_GSO_TCPV4);
  K(VIRTIO_NET_HDR_GSO_TCPV6);
  K(VIRTIO_NET_HDR_GSO_UDP_L4);
  K(VIRTIO_NET_HDR_GSO_ECN);
  K(BPF_MAXINSNS);
  K(SKF_NET_OFF);
  K(SKF_AD_OFF);
  K(WRITE_SKIP);
  K(WRITE_END);
  K(WRITE_FATAL);
  K(M_MMAP_THRESHOLD);
#undef K
  ok &= set_int(env, c, "VIRTIO_NET_HDR_LEN", sizeof(struct virtio_net_hdr));
  ok &= set_int(env, c, "SOCKADDR_IN6_LEN", sizeof(struct sockaddr_in6));
  ok &= set_int(env, c, "SOCKADDR_IN6_ADDR_OFF", offsetof(struct sockaddr_in6, sin6_addr));
  ok &= set_int(env, c, "SOCKADDR_IN6_SCOPE_OFF", offsetof(struct sockaddr_in6, sin6_scope_id));
  if (!ok) return napi_failed(env, "cannot build the constants table");
  return c;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"tunOpen", TunOpen},
      {"tunSetPersist", TunSetPersist},
      {"tunSetQueue", TunSetQueue},
      {"tunSetOffload", TunSetOffload},
      {"tunGetFlags", TunGetFlags},
      {"socket", Socket},
      {"socketPair", SocketPair},
      {"setsockoptInt", SetsockoptInt},
      {"setsockoptBuf", SetsockoptBuf},
      {"getsockoptInt", GetsockoptInt},
      {"getsockoptBuf", GetsockoptBuf},
      {"setsockoptMreq6", SetsockoptMreq6},
      {"attachFilter", AttachFilter},
      {"bpf", Bpf},
      {"bindPacket", BindPacket},
      {"bindNetlink", BindNetlink},
      {"netlinkPortId", NetlinkPortId},
      {"send", Send},
      {"sendto", SendTo},
      {"recv", Recv},
      {"read", Read},
      {"write", Write},
      {"close", Close},
      {"madvise", Madvise},
      {"pollMany", PollMany},
      {"eventfd", EventFd},
      {"eventfdWrite", EventFdWrite},
      {"eventfdRead", EventFdRead},
      {"setNetns", SetNetns},
      {"dropPrivileges", DropPrivileges},
      {"ifNameToIndex", IfNameToIndex},
      {"ifIndexToName", IfIndexToName},
      {"mallopt", Mallopt},
      {"readBatch", ReadBatch},
      {"recvBatch", RecvBatch},
      {"writeBatch", WriteBatch},
      {"sendBatch", SendBatch},
      {"writeErrnoClass", WriteErrnoClass},
      {"pollStart", PollStart},
      {"pollStop", PollStop},
      {"bind", Bind},
      {"unbind", Unbind},
  };
  /*
   * Every failure here throws: a NULL return without an exception would leave require() with a
   * half-filled exports object, which TypeScript would only notice at the first missing call.
   */
  /* This environment's bound array sets, handed to every function as its data. */
  struct state *st = calloc(1, sizeof *st);
  if (st == NULL) return napi_failed(env, "clatd_native: out of memory");
  if (napi_set_instance_data(env, st, state_free, NULL) != napi_ok) {
    free(st);
    return napi_failed(env, "clatd_native: cannot set instance data");
  }
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, st, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return napi_failed(env, "clatd_native: cannot export a function");
  }
  napi_value c = make_constants(env);
  if (c == NULL || napi_set_named_property(env, exports, "constants", c) != napi_ok)
    return napi_failed(env, "clatd_native: cannot export the constants");
  return exports;
}
