// dma-buf: the ioctls every dma-buf answers (sync, name, implicit fences as sync_files).
#include "cdmabuf.h"
#include "result.h"

#include <sys/ioctl.h>
#include <linux/dma-buf.h>

_Static_assert(sizeof(struct dma_buf_export_sync_file) == 8, "dma_buf_export_sync_file");
_Static_assert(sizeof(struct dma_buf_import_sync_file) == 8, "dma_buf_import_sync_file");

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
