// The calls every loop round or frame makes, defined here as static inline so that Swift
// compiles them into its own code: no call frame between Swift and the syscall. Same
// contract as every cdmabuf_ function: the result, or -errno; no EINTR retry.
#ifndef CDMABUF_INLINE_H
#define CDMABUF_INLINE_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>

static inline int cdmabuf_close(int fd) { return close(fd) < 0 ? -errno : 0; }

// Ready count; `*revents` set when it is 1.
static inline int cdmabuf_poll(int fd, short events, int timeout_ms, short *revents) {
    struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
    int n = poll(&p, 1, timeout_ms);
    if (n < 0) return -errno;
    *revents = p.revents;
    return n;
}

// `fd_field` is what the request's out-field holds on entry; the kernel requires 0 and it is
// a parameter only so that this rule can be tested. New fd.
static inline int cdmabuf_dma_heap_alloc(int heap_fd, uint64_t len, uint32_t fd_flags,
                                         uint64_t heap_flags, uint32_t fd_field) {
    struct dma_heap_allocation_data data = {
        .len = len, .fd = fd_field, .fd_flags = fd_flags, .heap_flags = heap_flags,
    };
    if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0) return -errno;
    return (int)data.fd;
}

// New fd.
static inline int cdmabuf_udmabuf_create(int dev_fd, uint32_t memfd, uint32_t flags,
                                         uint64_t offset, uint64_t size) {
    struct udmabuf_create c = { .memfd = memfd, .flags = flags, .offset = offset, .size = size };
    int fd = ioctl(dev_fd, UDMABUF_CREATE, &c);
    return fd < 0 ? -errno : fd;
}

static inline int cdmabuf_dma_buf_sync(int fd, uint64_t flags) {
    struct dma_buf_sync s = { .flags = flags };
    return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) < 0 ? -errno : 0;
}

#endif
