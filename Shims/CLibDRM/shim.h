// libdrm (Debian: libdrm-dev). Include path comes from `pkg-config libdrm`.
#include <xf86drm.h>
#include <xf86drmMode.h>
#include <drm_fourcc.h>
