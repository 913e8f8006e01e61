// dma-heap: DMA_HEAP_IOCTL_ALLOC.
#include "cdmabuf.h"
#include "result.h"

#include <sys/ioctl.h>
#include <linux/dma-heap.h>

_Static_assert(sizeof(struct dma_heap_allocation_data) == 24, "dma_heap_allocation_data");

int cdmabuf_dma_heap_alloc(int heap_fd, uint64_t len, uint32_t fd_flags,
                           uint64_t heap_flags, uint32_t fd_field) {
    struct dma_heap_allocation_data data = {
        .len = len, .fd = fd_field, .fd_flags = fd_flags, .heap_flags = heap_flags,
    };
    if (ioctl(heap_fd, DMA_HEAP_IOCTL_ALLOC, &data) < 0) return -errno;
    return (int)data.fd;
}
