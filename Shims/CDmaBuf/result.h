// Private to the shim: how every wrapper turns a libc result into 0/value or -errno.
#ifndef CDMABUF_RESULT_H
#define CDMABUF_RESULT_H
#include <errno.h>
static inline int neg_errno(int ret) { return ret < 0 ? -errno : ret; }
#endif
