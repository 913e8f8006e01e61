// The C reference for dmabuf-bench: the benchmark loops written the way a C programmer
// would, straight on ioctl(2) (and libdrm for PRIME, as DmaBufKit uses it). Each loop runs
// `rounds` times on descriptors the caller set up, and reports the calling thread's CPU time
// in nanoseconds (CLOCK_THREAD_CPUTIME_ID) through `cpu_ns`. Returns 0, or -errno of the first
// failing call (the loop stops there; everything it made is closed).
#ifndef CBENCHREFERENCE_H
#define CBENCHREFERENCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// DMA_HEAP_IOCTL_ALLOC of `length` bytes (O_RDWR | O_CLOEXEC), then close(2).
int cbench_heap_alloc_close(int heap_fd, uint64_t length, int rounds, int64_t *cpu_ns);

// UDMABUF_CREATE over the first `size` bytes of `memfd` (UDMABUF_FLAGS_CLOEXEC), then close(2).
int cbench_udmabuf_create_close(int udmabuf_fd, int memfd, uint64_t size, int rounds, int64_t *cpu_ns);

// DMA_BUF_IOCTL_SYNC START|RW then END|RW on `dmabuf_fd`: one round is one pair.
int cbench_sync_pairs(int dmabuf_fd, int rounds, int64_t *cpu_ns);

// On a streaming MMAP queue: poll(2) for a buffer, VIDIOC_DQBUF it, VIDIOC_QBUF it back.
// `multiplanar` selects the _MPLANE layout with `planes` planes.
int cbench_v4l2_round_trips(int video_fd, uint32_t type, int multiplanar, uint32_t planes, int rounds, int64_t *cpu_ns);

// PRIME import of `dmabuf_fd` on `drm_fd` (drmPrimeFDToHandle), then drmCloseBufferHandle.
int cbench_prime_import_close(int drm_fd, int dmabuf_fd, int rounds, int64_t *cpu_ns);

// The pipeline floor: zero-copy capture → display with only the system calls it needs. Opens
// `video_path` (capture, XR24 at width x height and `fps`, `buffers` buffers, each PRIME-imported
// and made a framebuffer: the queue's MMAP buffers exported by VIDIOC_EXPBUF, or with
// `heap_path` (else NULL) buffers allocated from that dma-buf heap and queued as DMABUF) and `drm_path` (the first CRTC, its
// primary plane, a connected connector with a width x height mode); then per frame: poll,
// VIDIOC_DQBUF, an atomic commit flipping to it (asking a flip event), poll and read the event,
// VIDIOC_QBUF of the frame it replaced; `frames` frames. With `bookkeeping`, also the two calls
// dmabuf-pipe makes for its report: DRM_IOCTL_CRTC_GET_SEQUENCE before each flip after the first
// (its late-flip count) and, after the QBUF, a poll of the capture node that does not wait (its
// drop ledger: was the next frame already there). Everything is released before it returns 0 or
// -errno, the failing call described in `error`.
int cbench_pipeline_floor(
    const char *video_path, const char *drm_path, const char *heap_path, uint32_t width, uint32_t height, uint32_t fps, uint32_t buffers,
    uint32_t frames, int bookkeeping, char *error, size_t error_size);

// The clock both sides are timed by, checked before anything is measured: `loops` busy loops
// of `busy_ns` each on CLOCK_MONOTONIC, each read on the thread CPU clock too (wall_ns[i],
// cpu_ns[i]); a clock that stalls reads 0 for some, one that lags reads far below the wall.
void cbench_clock_busy_loops(int loops, int64_t busy_ns, int64_t *wall_ns, int64_t *cpu_ns);

// The thread CPU clock's step: the smallest non-zero difference between successive readings
// over `reads` readings (0 when it never moved).
int64_t cbench_clock_step(int reads);

#ifdef __cplusplus
}
#endif

#endif
