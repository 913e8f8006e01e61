// libdrm (Debian: libdrm-dev). Include path comes from `pkg-config libdrm`.
#include <xf86drm.h>
#include <xf86drmMode.h>
#include <drm_fourcc.h>

#include <errno.h>
#include <stdint.h>

// DRM_IOCTL_MODE_CLOSEFB (Linux 6.8): Debian 12's libdrm (2.4.114) has neither a wrapper nor the
// number, so the shim defines both. Returns 0 or -errno.
struct cdmabuf_drm_mode_closefb {
    uint32_t fb_id;
    uint32_t pad;
};
_Static_assert(sizeof(struct cdmabuf_drm_mode_closefb) == 8, "drm_mode_closefb");
#define CDMABUF_DRM_IOCTL_MODE_CLOSEFB DRM_IOWR(0xD0, struct cdmabuf_drm_mode_closefb)
#ifdef DRM_IOCTL_MODE_CLOSEFB
_Static_assert(DRM_IOCTL_MODE_CLOSEFB == CDMABUF_DRM_IOCTL_MODE_CLOSEFB, "DRM_IOCTL_MODE_CLOSEFB");
#endif

static inline int cdmabuf_drm_mode_closefb(int fd, uint32_t fb_id) {
    struct cdmabuf_drm_mode_closefb close_fb = {.fb_id = fb_id, .pad = 0};
    return drmIoctl(fd, CDMABUF_DRM_IOCTL_MODE_CLOSEFB, &close_fb) ? -errno : 0;
}
