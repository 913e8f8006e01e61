#define _GNU_SOURCE
#include "cdmabuf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include <linux/udmabuf.h>

// sw_sync's ABI lives in drivers/dma-buf/sw_sync.c, not in a uapi header.
struct sw_sync_create_fence_data {
    uint32_t value;
    char name[32];
    int32_t fence;
};
#define SW_SYNC_IOC_MAGIC 'W'
#define SW_SYNC_IOC_CREATE_FENCE _IOWR(SW_SYNC_IOC_MAGIC, 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC _IOW(SW_SYNC_IOC_MAGIC, 1, uint32_t)

// Layouts we mirror or pass by hand must match the kernel's ABI.
_Static_assert(sizeof(struct dma_heap_allocation_data) == 24, "dma_heap_allocation_data");
_Static_assert(sizeof(struct udmabuf_create) == 24, "udmabuf_create");
_Static_assert(sizeof(struct udmabuf_create_item) == sizeof(struct cdmabuf_udmabuf_item), "item size");
_Static_assert(offsetof(struct udmabuf_create_item, offset) == offsetof(struct cdmabuf_udmabuf_item, offset), "item offset");
_Static_assert(offsetof(struct udmabuf_create_item, size) == offsetof(struct cdmabuf_udmabuf_item, size), "item size field");
_Static_assert(sizeof(struct udmabuf_create_list) == 8, "udmabuf_create_list head");
_Static_assert(sizeof(struct sync_fence_info) == sizeof(struct cdmabuf_fence_info), "fence info size");
_Static_assert(offsetof(struct sync_fence_info, status) == offsetof(struct cdmabuf_fence_info, status), "fence status");
_Static_assert(offsetof(struct sync_fence_info, timestamp_ns) == offsetof(struct cdmabuf_fence_info, timestamp_ns), "fence timestamp");
_Static_assert(sizeof(struct sync_file_info) == 56, "sync_file_info");
_Static_assert(sizeof(struct sync_merge_data) == 48, "sync_merge_data");
_Static_assert(sizeof(struct sw_sync_create_fence_data) == 40, "sw_sync_create_fence_data");
_Static_assert(sizeof(struct dma_buf_export_sync_file) == 8, "dma_buf_export_sync_file");
_Static_assert(sizeof(struct dma_buf_import_sync_file) == 8, "dma_buf_import_sync_file");

static inline int neg_errno(int ret) { return ret < 0 ? -errno : ret; }

// ---- files and memory ----------------------------------------------------
int cdmabuf_open(const char *path, int flags) { return neg_errno(open(path, flags)); }
int cdmabuf_close(int fd) { return neg_errno(close(fd)); }
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

int cdmabuf_poll(int fd, short events, int timeout_ms, short *revents) {
    struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
    int n = poll(&p, 1, timeout_ms);
    if (n < 0) return -errno;
    *revents = p.revents;
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

// ---- dma-heap ------------------------------------------------------------
int cdmabuf_dma_heap_alloc(int heap_fd, uint64_t len, uint32_t fd_flags,
                           uint64_t heap_flags, uint32_t fd_field) {
    struct dma_heap_allocation_data data = {
        .len = len, .fd = fd_field, .fd_flags = fd_flags, .heap_flags = heap_flags,
    };
    if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0) return -errno;
    return (int)data.fd;
}

// ---- udmabuf -------------------------------------------------------------
int cdmabuf_udmabuf_create(int dev_fd, uint32_t memfd, uint32_t flags,
                           uint64_t offset, uint64_t size) {
    struct udmabuf_create c = { .memfd = memfd, .flags = flags, .offset = offset, .size = size };
    return neg_errno(ioctl(dev_fd, UDMABUF_CREATE, &c));
}

int cdmabuf_udmabuf_create_list(int dev_fd, uint32_t flags,
                                const struct cdmabuf_udmabuf_item *items, uint32_t count) {
    size_t bytes = sizeof(struct udmabuf_create_list) + (size_t)count * sizeof(struct udmabuf_create_item);
    struct udmabuf_create_list *list = calloc(1, bytes);
    if (!list) return -ENOMEM;
    list->flags = flags;
    list->count = count;
    if (count) memcpy(list->list, items, (size_t)count * sizeof(struct udmabuf_create_item));
    int ret = neg_errno(ioctl(dev_fd, UDMABUF_CREATE_LIST, list));
    free(list);
    return ret;
}

// ---- dma-buf -------------------------------------------------------------
int cdmabuf_dma_buf_sync(int fd, uint64_t flags) {
    struct dma_buf_sync s = { .flags = flags };
    return neg_errno(ioctl(fd, DMA_BUF_IOCTL_SYNC, &s));
}

int cdmabuf_dma_buf_set_name(int fd, const char *name) {
    return neg_errno(ioctl(fd, DMA_BUF_SET_NAME_B, name));
}

int cdmabuf_dma_buf_export_sync_file(int fd, uint32_t flags) {
    struct dma_buf_export_sync_file e = { .flags = flags, .fd = -1 };
    if (ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &e) < 0) return -errno;
    return e.fd;
}

int cdmabuf_dma_buf_import_sync_file(int fd, uint32_t flags, int sync_fd) {
    struct dma_buf_import_sync_file i = { .flags = flags, .fd = sync_fd };
    return neg_errno(ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &i));
}

// ---- sync_file -----------------------------------------------------------
int cdmabuf_sync_merge(int fd, int other_fd, const char *name) {
    struct sync_merge_data m;
    memset(&m, 0, sizeof m);
    strncpy(m.name, name, sizeof m.name - 1);
    m.fd2 = other_fd;
    if (ioctl(fd, SYNC_IOC_MERGE, &m) < 0) return -errno;
    return m.fence;
}

int cdmabuf_sync_file_info(int fd, char name[32], int32_t *status, uint32_t *num_fences,
                           struct cdmabuf_fence_info *fences, uint32_t capacity) {
    struct sync_file_info info;
    memset(&info, 0, sizeof info);
    info.num_fences = capacity;
    info.sync_fence_info = (uint64_t)(uintptr_t)fences;
    if (ioctl(fd, SYNC_IOC_FILE_INFO, &info) < 0) return -errno;
    memcpy(name, info.name, sizeof info.name);
    *status = info.status;
    *num_fences = info.num_fences;
    return 0;
}

// ---- sw_sync -------------------------------------------------------------
int cdmabuf_sw_sync_create_fence(int timeline_fd, uint32_t value, const char *name) {
    struct sw_sync_create_fence_data d;
    memset(&d, 0, sizeof d);
    d.value = value;
    strncpy(d.name, name, sizeof d.name - 1);
    if (ioctl(timeline_fd, SW_SYNC_IOC_CREATE_FENCE, &d) < 0) return -errno;
    return d.fence;
}

int cdmabuf_sw_sync_inc(int timeline_fd, uint32_t count) {
    return neg_errno(ioctl(timeline_fd, SW_SYNC_IOC_INC, &count));
}
