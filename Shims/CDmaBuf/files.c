// Files and memory: the plain syscalls, with -errno results like every ioctl wrapper.
#define _GNU_SOURCE
#include "cdmabuf.h"
#include "result.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

int cdmabuf_open(const char *path, int flags) { return neg_errno(open(path, flags)); }
int cdmabuf_dup_cloexec(int fd) { return neg_errno(fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

long cdmabuf_read(int fd, void *buf, size_t len) {
    ssize_t n = read(fd, buf, len);
    return n < 0 ? -errno : (long)n;
}

long cdmabuf_write(int fd, const void *buf, size_t len) {
    ssize_t n = write(fd, buf, len);
    return n < 0 ? -errno : (long)n;
}

int cdmabuf_mmap(int fd, uint64_t length, int prot, int flags, uint64_t offset, void **out) {
    void *p = mmap(NULL, (size_t)length, prot, flags, fd, (off_t)offset);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

int cdmabuf_munmap(void *addr, uint64_t length) { return neg_errno(munmap(addr, (size_t)length)); }

int cdmabuf_poll_many(const int *fds, const short *events, short *revents, int count, int timeout_ms) {
    struct pollfd p[CDMABUF_POLL_MAX];
    if (count < 0 || count > CDMABUF_POLL_MAX) return -EINVAL;
    for (int i = 0; i < count; i++) p[i] = (struct pollfd){ .fd = fds[i], .events = events[i], .revents = 0 };
    int n = poll(p, (nfds_t)count, timeout_ms);
    if (n < 0) return -errno;
    for (int i = 0; i < count; i++) revents[i] = p[i].revents;
    return n;
}

int cdmabuf_memfd_create(const char *name, unsigned int flags) { return neg_errno(memfd_create(name, flags)); }
int cdmabuf_ftruncate(int fd, uint64_t length) { return neg_errno(ftruncate(fd, (off_t)length)); }
int cdmabuf_add_seals(int fd, int seals) { return neg_errno(fcntl(fd, F_ADD_SEALS, seals)); }
int cdmabuf_get_seals(int fd) { return neg_errno(fcntl(fd, F_GET_SEALS)); }
int cdmabuf_fd_flags(int fd) { return neg_errno(fcntl(fd, F_GETFD)); }

int cdmabuf_kernel_release(char *buf, size_t len) {
    struct utsname u;
    if (uname(&u) < 0) return -errno;
    strncpy(buf, u.release, len - 1);
    buf[len - 1] = '\0';
    return 0;
}

long cdmabuf_page_size(void) { return sysconf(_SC_PAGESIZE); }

uint64_t cdmabuf_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES);
    return pages < 0 ? 0 : (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}
