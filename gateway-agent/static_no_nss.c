/* Linked into the static mistore-agent only (MISTORE_STATIC_AGENT, see
 * gateway-agent/CMakeLists.txt), together with -Wl,--wrap=getpwuid_r.
 *
 * A statically linked glibc program that calls a name-service function
 * (getpwuid_r, getaddrinfo, ...) loads NSS modules with dlopen at run time:
 * they must come from the very glibc version it was linked with, which a
 * gateway's firmware does not have. The agent never asks for names: it
 * parses numeric addresses only. But libuv's core.c, linked whole, defines
 * uv_os_get_passwd() and so pulls getpwuid_r and all of NSS into the binary.
 * This replaces that one reference with a function that fails, so that no
 * NSS code is linked at all (cross-toolchains/build.sh checks with nm). */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

int __wrap_getpwuid_r(uid_t uid, struct passwd* pwd, char* buf, size_t buflen,
                      struct passwd** result) {
  (void)uid;
  (void)pwd;
  (void)buf;
  (void)buflen;
  *result = NULL;
  return ENOSYS;
}
