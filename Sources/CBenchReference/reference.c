#define _GNU_SOURCE
#include "cbenchreference.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <linux/videodev2.h>
#include <xf86drm.h>

static int64_t thread_cpu_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

void cbench_clock_busy_loops(int loops, int64_t busy_ns, int64_t *wall_ns, int64_t *cpu_ns) {
    for (int i = 0; i < loops; i++) {
        // The wall reading brackets the CPU reading, so a sound clock never reads more CPU
        // time than wall time.
        int64_t wall = monotonic_ns(), cpu = thread_cpu_ns();
        while (monotonic_ns() - wall < busy_ns) {}
        cpu_ns[i] = thread_cpu_ns() - cpu;
        wall_ns[i] = monotonic_ns() - wall;
    }
}

int64_t cbench_clock_step(int reads) {
    int64_t last = thread_cpu_ns(), step = 0;
    for (int i = 0; i < reads; i++) {
        int64_t now = thread_cpu_ns();
        if (now != last && (step == 0 || now - last < step)) step = now - last;
        last = now;
    }
    return step;
}

// ioctl(2), retrying EINTR as DmaBufKit does; -errno on failure.
static int xioctl(int fd, unsigned long request, void *arg) {
    int ret;
    do ret = ioctl(fd, request, arg); while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : ret;
}

int cbench_heap_alloc_close(int heap_fd, uint64_t length, int rounds, int64_t *cpu_ns) {
    int64_t start = thread_cpu_ns();
    for (int i = 0; i < rounds; i++) {
        struct dma_heap_allocation_data data = { .len = length, .fd_flags = O_RDWR | O_CLOEXEC };
        int ret = xioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data);
        if (ret < 0) return ret;
        if (close((int)data.fd) < 0) return -errno;
    }
    *cpu_ns = thread_cpu_ns() - start;
    return 0;
}

int cbench_udmabuf_create_close(int udmabuf_fd, int memfd, uint64_t size, int rounds, int64_t *cpu_ns) {
    int64_t start = thread_cpu_ns();
    for (int i = 0; i < rounds; i++) {
        struct udmabuf_create create = { .memfd = (uint32_t)memfd, .flags = UDMABUF_FLAGS_CLOEXEC, .offset = 0, .size = size };
        int fd = xioctl(udmabuf_fd, UDMABUF_CREATE, &create);
        if (fd < 0) return fd;
        if (close(fd) < 0) return -errno;
    }
    *cpu_ns = thread_cpu_ns() - start;
    return 0;
}

int cbench_sync_pairs(int dmabuf_fd, int rounds, int64_t *cpu_ns) {
    int64_t start = thread_cpu_ns();
    for (int i = 0; i < rounds; i++) {
        struct dma_buf_sync sync = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
        int ret = xioctl(dmabuf_fd, DMA_BUF_IOCTL_SYNC, &sync);
        if (ret < 0) return ret;
        sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
        ret = xioctl(dmabuf_fd, DMA_BUF_IOCTL_SYNC, &sync);
        if (ret < 0) return ret;
    }
    *cpu_ns = thread_cpu_ns() - start;
    return 0;
}

int cbench_v4l2_round_trips(int video_fd, uint32_t type, int multiplanar, uint32_t planes, int rounds, int64_t *cpu_ns) {
    int64_t start = thread_cpu_ns();
    for (int i = 0; i < rounds; i++) {
        struct pollfd ready = { .fd = video_fd, .events = POLLIN };
        int ret;
        do ret = poll(&ready, 1, 5000); while (ret < 0 && errno == EINTR);
        if (ret < 0) return -errno;
        if (ret == 0) return -ETIMEDOUT;
        struct v4l2_plane plane_array[VIDEO_MAX_PLANES];
        struct v4l2_buffer buffer = { .type = type, .memory = V4L2_MEMORY_MMAP };
        if (multiplanar) {
            memset(plane_array, 0, sizeof plane_array);
            buffer.m.planes = plane_array;
            buffer.length = planes;
        }
        ret = xioctl(video_fd, VIDIOC_DQBUF, &buffer);
        if (ret < 0) return ret;
        ret = xioctl(video_fd, VIDIOC_QBUF, &buffer);
        if (ret < 0) return ret;
    }
    *cpu_ns = thread_cpu_ns() - start;
    return 0;
}

int cbench_prime_import_close(int drm_fd, int dmabuf_fd, int rounds, int64_t *cpu_ns) {
    int64_t start = thread_cpu_ns();
    for (int i = 0; i < rounds; i++) {
        uint32_t handle = 0;
        if (drmPrimeFDToHandle(drm_fd, dmabuf_fd, &handle) != 0) return -errno;
        if (drmCloseBufferHandle(drm_fd, handle) != 0) return -errno;
    }
    *cpu_ns = thread_cpu_ns() - start;
    return 0;
}
