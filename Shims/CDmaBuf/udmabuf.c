// udmabuf: UDMABUF_CREATE and UDMABUF_CREATE_LIST.
#include "cdmabuf.h"
#include "result.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/udmabuf.h>

// Layouts we mirror or pass by hand must match the kernel's ABI.
_Static_assert(sizeof(struct udmabuf_create) == 24, "udmabuf_create");
_Static_assert(sizeof(struct udmabuf_create_item) == sizeof(struct cdmabuf_udmabuf_item), "item size");
_Static_assert(offsetof(struct udmabuf_create_item, offset) == offsetof(struct cdmabuf_udmabuf_item, offset), "item offset");
_Static_assert(offsetof(struct udmabuf_create_item, size) == offsetof(struct cdmabuf_udmabuf_item, size), "item size field");
_Static_assert(sizeof(struct udmabuf_create_list) == 8, "udmabuf_create_list head");

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
