// dma-heap: DMA_HEAP_IOCTL_ALLOC (the call itself is inline, in cdmabuf_inline.h).
#include "cdmabuf.h"
#include "result.h"

#include <sys/ioctl.h>
#include <linux/dma-heap.h>

_Static_assert(sizeof(struct dma_heap_allocation_data) == 24, "dma_heap_allocation_data");
