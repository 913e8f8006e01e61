// cdmabuf: one C function per kernel operation DmaBufKit uses.
//
// Swift cannot expand the _IOW/_IOWR macros, and the kernel structs are easier to
// keep honest in C. Every function returns 0 (or a new fd / value >= 0 where its
// comment says so) on success and -errno on failure. Nothing here retries EINTR:
// the caller decides (it must never retry close).
#ifndef CDMABUF_H
#define CDMABUF_H

#include <stddef.h>
#include <stdint.h>

#include "cdmabuf_inline.h"   // close, poll, heap alloc, udmabuf create, dma-buf sync

#ifdef __cplusplus
extern "C" {
#endif

// ---- stop signals (signals.c) -------------------------------------------
int cdmabuf_stop_signals_install(void);   // SIGINT/SIGTERM recorded; a second one _exit(128+sig)
int cdmabuf_stop_signal(void);            // the signal recorded, 0 when none
void cdmabuf_stop_signal_clear(void);

// ---- files and memory ----------------------------------------------------
int cdmabuf_open(const char *path, int flags);              // new fd
int cdmabuf_dup_cloexec(int fd);                            // new fd
long cdmabuf_read(int fd, void *buf, size_t len);           // bytes read
long cdmabuf_write(int fd, const void *buf, size_t len);    // bytes written
int cdmabuf_mmap(int fd, uint64_t length, int prot, int flags, uint64_t offset, void **out);
int cdmabuf_munmap(void *addr, uint64_t length);
#define CDMABUF_POLL_MAX 64
// poll(2) over `count` (at most CDMABUF_POLL_MAX) descriptors, as parallel arrays; ready count.
int cdmabuf_poll_many(const int *fds, const short *events, short *revents, int count, int timeout_ms);
int cdmabuf_memfd_create(const char *name, unsigned int flags);        // new fd
int cdmabuf_ftruncate(int fd, uint64_t length);
int cdmabuf_add_seals(int fd, int seals);
int cdmabuf_get_seals(int fd);                              // seal bits
int cdmabuf_fd_flags(int fd);                               // F_GETFD bits
int cdmabuf_kernel_release(char *buf, size_t len);
long cdmabuf_page_size(void);
uint64_t cdmabuf_physical_memory(void);

// ---- dma-heap ------------------------------------------------------------

// ---- udmabuf -------------------------------------------------------------
struct cdmabuf_udmabuf_item {   // mirrors struct udmabuf_create_item
    uint32_t memfd;
    uint32_t pad;
    uint64_t offset;
    uint64_t size;
};
int cdmabuf_udmabuf_create_list(int dev_fd, uint32_t flags,
                                const struct cdmabuf_udmabuf_item *items,
                                uint32_t count);                       // new fd

// ---- dma-buf -------------------------------------------------------------
int cdmabuf_dma_buf_set_name(int fd, const char *name);
int cdmabuf_dma_buf_export_sync_file(int fd, uint32_t flags);         // new fd
int cdmabuf_dma_buf_import_sync_file(int fd, uint32_t flags, int sync_fd);

// ---- sync_file -----------------------------------------------------------
struct cdmabuf_fence_info {     // mirrors struct sync_fence_info
    char obj_name[32];
    char driver_name[32];
    int32_t status;
    uint32_t flags;
    uint64_t timestamp_ns;
};
int cdmabuf_sync_merge(int fd, int other_fd, const char *name);      // new fd
// With capacity 0 only `name`, `status` and `num_fences` are filled.
int cdmabuf_sync_file_info(int fd, char name[32], int32_t *status, uint32_t *num_fences,
                           struct cdmabuf_fence_info *fences, uint32_t capacity);
// SYNC_IOC_SET_DEADLINE (6.3): a CLOCK_MONOTONIC deadline hint for the fence (ENOTTY before).
int cdmabuf_sync_set_deadline(int fd, uint64_t deadline_ns);

// ---- sw_sync (debugfs sync/sw_sync; for tests) ----------------------------
int cdmabuf_sw_sync_create_fence(int timeline_fd, uint32_t value, const char *name); // new fd
int cdmabuf_sw_sync_inc(int timeline_fd, uint32_t count);

#ifdef __cplusplus
}
#endif
#include "cdmabuf_v4l2.h"  // V4L2: the same rules, over flat structs

#endif
