// sync_file: merge and info; sw_sync (debugfs) timelines for tests.
#include "cdmabuf.h"
#include "result.h"

#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sync_file.h>

// sw_sync's ABI lives in drivers/dma-buf/sw_sync.c, not in a uapi header.
struct sw_sync_create_fence_data {
    uint32_t value;
    char name[32];
    int32_t fence;
};
#define SW_SYNC_IOC_MAGIC 'W'
#define SW_SYNC_IOC_CREATE_FENCE _IOWR(SW_SYNC_IOC_MAGIC, 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC _IOW(SW_SYNC_IOC_MAGIC, 1, uint32_t)

// SYNC_IOC_SET_DEADLINE (Linux 6.3), defined here because the build host's uapi headers may
// predate it (Debian 12's are 6.1).
struct cdmabuf_sync_set_deadline {
    uint64_t deadline_ns;
    uint64_t pad;
};
#define CDMABUF_SYNC_IOC_SET_DEADLINE _IOW(SYNC_IOC_MAGIC, 5, struct cdmabuf_sync_set_deadline)
#ifdef SYNC_IOC_SET_DEADLINE
_Static_assert(SYNC_IOC_SET_DEADLINE == CDMABUF_SYNC_IOC_SET_DEADLINE, "SYNC_IOC_SET_DEADLINE");
#endif

// Layouts we mirror or pass by hand must match the kernel's ABI.
_Static_assert(sizeof(struct sync_fence_info) == sizeof(struct cdmabuf_fence_info), "fence info size");
_Static_assert(offsetof(struct sync_fence_info, status) == offsetof(struct cdmabuf_fence_info, status), "fence status");
_Static_assert(offsetof(struct sync_fence_info, timestamp_ns) == offsetof(struct cdmabuf_fence_info, timestamp_ns), "fence timestamp");
_Static_assert(sizeof(struct sync_file_info) == 56, "sync_file_info");
_Static_assert(sizeof(struct sync_merge_data) == 48, "sync_merge_data");
_Static_assert(sizeof(struct sw_sync_create_fence_data) == 40, "sw_sync_create_fence_data");
_Static_assert(sizeof(struct cdmabuf_sync_set_deadline) == 16, "sync_set_deadline");

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

int cdmabuf_sync_set_deadline(int fd, uint64_t deadline_ns) {
    struct cdmabuf_sync_set_deadline d;
    memset(&d, 0, sizeof d);
    d.deadline_ns = deadline_ns;
    return neg_errno(ioctl(fd, CDMABUF_SYNC_IOC_SET_DEADLINE, &d));
}

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
