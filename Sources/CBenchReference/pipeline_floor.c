// The pipeline floor: zero-copy capture → display in plain C, with nothing per frame but the
// system calls the path needs. dmabuf-pipe's export strategy is costed against it.
#define _GNU_SOURCE
#include "cbenchreference.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/dma-heap.h>
#include <linux/videodev2.h>
#include <xf86drm.h>
#include <xf86drmMode.h>
#include <drm_fourcc.h>

#define FLOOR_MAX_BUFFERS 32

struct floor {
    int video, drm;
    uint32_t type, buffers, memory, sizeimage;
    int multiplanar, streaming, displaying;
    int dmabufs[FLOOR_MAX_BUFFERS];
    uint32_t handles[FLOOR_MAX_BUFFERS], framebuffers[FLOOR_MAX_BUFFERS];
    uint32_t crtc, plane, connector, mode_blob;
    uint32_t plane_fb_id, plane_crtc_id, src_w, src_h, crtc_w, crtc_h, src_x, src_y, crtc_x, crtc_y;
    uint32_t crtc_mode_id, crtc_active, connector_crtc_id;
    char *error;
    size_t error_size;
};

// Records the first failure ("OPERATION on PATH: strerror") and returns -errno.
static int fail(struct floor *f, int ret, const char *operation, const char *path) {
    if (f->error && f->error_size && !f->error[0])
        snprintf(f->error, f->error_size, "%s on %s: %s", operation, path, strerror(-ret));
    return ret;
}

static int xioctl(int fd, unsigned long request, void *arg) {
    int ret;
    do ret = ioctl(fd, request, arg); while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : ret;
}

static int wait_readable(int fd) {
    struct pollfd ready = { .fd = fd, .events = POLLIN };
    int ret;
    do ret = poll(&ready, 1, 2000); while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : ret == 0 ? -ETIMEDOUT : 0;
}

static void buffer_init(struct floor *f, struct v4l2_buffer *buffer, struct v4l2_plane *plane, uint32_t index) {
    memset(buffer, 0, sizeof *buffer);
    buffer->type = f->type;
    buffer->memory = f->memory;
    buffer->index = index;
    int fd = f->memory == V4L2_MEMORY_DMABUF ? f->dmabufs[index] : 0;
    if (f->multiplanar) {
        memset(plane, 0, sizeof *plane);
        plane->m.fd = fd;
        plane->length = f->sizeimage;
        buffer->m.planes = plane;
        buffer->length = 1;
    } else if (fd) {
        buffer->m.fd = fd;
        buffer->length = f->sizeimage;
    }
}

// Property id of `name` on `object`, 0 when it has none.
static uint32_t property(int drm, uint32_t object, uint32_t type, const char *name) {
    drmModeObjectPropertiesPtr properties = drmModeObjectGetProperties(drm, object, type);
    uint32_t id = 0;
    for (uint32_t i = 0; properties && i < properties->count_props && !id; i++) {
        drmModePropertyPtr property = drmModeGetProperty(drm, properties->props[i]);
        if (property && strcmp(property->name, name) == 0) id = property->prop_id;
        drmModeFreeProperty(property);
    }
    drmModeFreeObjectProperties(properties);
    return id;
}

static int is_primary(int drm, uint32_t plane) {
    drmModeObjectPropertiesPtr properties = drmModeObjectGetProperties(drm, plane, DRM_MODE_OBJECT_PLANE);
    int primary = 0;
    for (uint32_t i = 0; properties && i < properties->count_props; i++) {
        drmModePropertyPtr property = drmModeGetProperty(drm, properties->props[i]);
        if (property && strcmp(property->name, "type") == 0)
            primary = properties->prop_values[i] == DRM_PLANE_TYPE_PRIMARY;
        drmModeFreeProperty(property);
    }
    drmModeFreeObjectProperties(properties);
    return primary;
}

// The first CRTC, its primary plane and a connected connector with a `width`x`height` mode.
static int find_display(struct floor *f, const char *path, uint32_t width, uint32_t height) {
    if (drmSetClientCap(f->drm, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1) || drmSetClientCap(f->drm, DRM_CLIENT_CAP_ATOMIC, 1))
        return fail(f, -errno, "DRM_IOCTL_SET_CLIENT_CAP", path);
    drmModeResPtr resources = drmModeGetResources(f->drm);
    if (!resources) return fail(f, -errno, "DRM_IOCTL_MODE_GETRESOURCES", path);
    int ret = -ENOENT;
    drmModeModeInfo mode;
    for (int i = 0; i < resources->count_connectors && ret; i++) {
        drmModeConnectorPtr connector = drmModeGetConnector(f->drm, resources->connectors[i]);
        for (int m = 0; connector && connector->connection == DRM_MODE_CONNECTED && m < connector->count_modes && ret; m++) {
            if (connector->modes[m].hdisplay == width && connector->modes[m].vdisplay == height) {
                mode = connector->modes[m];
                f->connector = connector->connector_id;
                ret = 0;
            }
        }
        drmModeFreeConnector(connector);
    }
    if (resources->count_crtcs < 1) ret = -ENOENT;
    else f->crtc = resources->crtcs[0];
    drmModeFreeResources(resources);
    if (ret) return fail(f, ret, "finding a connected connector with that mode", path);

    drmModePlaneResPtr planes = drmModeGetPlaneResources(f->drm);
    for (uint32_t i = 0; planes && i < planes->count_planes && !f->plane; i++) {
        drmModePlanePtr plane = drmModeGetPlane(f->drm, planes->planes[i]);
        if (plane && (plane->possible_crtcs & 1) && is_primary(f->drm, plane->plane_id)) f->plane = plane->plane_id;
        drmModeFreePlane(plane);
    }
    drmModeFreePlaneResources(planes);
    if (!f->plane) return fail(f, -ENOENT, "finding the first CRTC's primary plane", path);

    const struct { uint32_t *id; uint32_t object, type; const char *name; } wanted[] = {
        { &f->plane_fb_id, f->plane, DRM_MODE_OBJECT_PLANE, "FB_ID" },
        { &f->plane_crtc_id, f->plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID" },
        { &f->src_x, f->plane, DRM_MODE_OBJECT_PLANE, "SRC_X" },
        { &f->src_y, f->plane, DRM_MODE_OBJECT_PLANE, "SRC_Y" },
        { &f->src_w, f->plane, DRM_MODE_OBJECT_PLANE, "SRC_W" },
        { &f->src_h, f->plane, DRM_MODE_OBJECT_PLANE, "SRC_H" },
        { &f->crtc_x, f->plane, DRM_MODE_OBJECT_PLANE, "CRTC_X" },
        { &f->crtc_y, f->plane, DRM_MODE_OBJECT_PLANE, "CRTC_Y" },
        { &f->crtc_w, f->plane, DRM_MODE_OBJECT_PLANE, "CRTC_W" },
        { &f->crtc_h, f->plane, DRM_MODE_OBJECT_PLANE, "CRTC_H" },
        { &f->crtc_mode_id, f->crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID" },
        { &f->crtc_active, f->crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE" },
        { &f->connector_crtc_id, f->connector, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID" },
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        *wanted[i].id = property(f->drm, wanted[i].object, wanted[i].type, wanted[i].name);
        if (!*wanted[i].id) return fail(f, -ENOENT, wanted[i].name, path);
    }
    if (drmModeCreatePropertyBlob(f->drm, &mode, sizeof mode, &f->mode_blob))
        return fail(f, -errno, "DRM_IOCTL_MODE_CREATEPROPBLOB", path);
    return 0;
}

// Capture in XR24 at `fps` into `buffers` buffers, each made a framebuffer: the queue's own MMAP
// buffers exported (EXPBUF), or with `heap_path` buffers allocated there and imported (DMABUF).
static int set_up_capture(struct floor *f, const char *video_path, const char *drm_path, const char *heap_path,
                          uint32_t width, uint32_t height, uint32_t fps) {
    struct v4l2_capability caps = { 0 };
    int ret = xioctl(f->video, VIDIOC_QUERYCAP, &caps);
    if (ret < 0) return fail(f, ret, "VIDIOC_QUERYCAP", video_path);
    uint32_t device_caps = caps.capabilities & V4L2_CAP_DEVICE_CAPS ? caps.device_caps : caps.capabilities;
    f->multiplanar = !(device_caps & V4L2_CAP_VIDEO_CAPTURE) && (device_caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE);
    f->type = f->multiplanar ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;

    struct v4l2_format format = { .type = f->type };
    uint32_t pitch;
    if (f->multiplanar) {
        format.fmt.pix_mp = (struct v4l2_pix_format_mplane){
            .width = width, .height = height, .pixelformat = V4L2_PIX_FMT_XBGR32, .field = V4L2_FIELD_NONE, .num_planes = 1 };
    } else {
        format.fmt.pix = (struct v4l2_pix_format){
            .width = width, .height = height, .pixelformat = V4L2_PIX_FMT_XBGR32, .field = V4L2_FIELD_NONE };
    }
    ret = xioctl(f->video, VIDIOC_S_FMT, &format);
    if (ret < 0) return fail(f, ret, "VIDIOC_S_FMT", video_path);
    if (f->multiplanar) {
        if (format.fmt.pix_mp.width != width || format.fmt.pix_mp.height != height || format.fmt.pix_mp.num_planes != 1)
            return fail(f, -EINVAL, "VIDIOC_S_FMT (size or planes changed)", video_path);
        pitch = format.fmt.pix_mp.plane_fmt[0].bytesperline;
        f->sizeimage = format.fmt.pix_mp.plane_fmt[0].sizeimage;
    } else {
        if (format.fmt.pix.width != width || format.fmt.pix.height != height)
            return fail(f, -EINVAL, "VIDIOC_S_FMT (size changed)", video_path);
        pitch = format.fmt.pix.bytesperline;
        f->sizeimage = format.fmt.pix.sizeimage;
    }
    struct v4l2_streamparm parm = { .type = f->type };
    parm.parm.capture.timeperframe = (struct v4l2_fract){ .numerator = 1, .denominator = fps };
    ret = xioctl(f->video, VIDIOC_S_PARM, &parm);
    if (ret < 0) return fail(f, ret, "VIDIOC_S_PARM", video_path);

    f->memory = heap_path ? V4L2_MEMORY_DMABUF : V4L2_MEMORY_MMAP;
    struct v4l2_requestbuffers request = { .count = f->buffers, .type = f->type, .memory = f->memory };
    ret = xioctl(f->video, VIDIOC_REQBUFS, &request);
    if (ret < 0) return fail(f, ret, "VIDIOC_REQBUFS", video_path);
    if (request.count != f->buffers) return fail(f, -ENOMEM, "VIDIOC_REQBUFS (fewer buffers)", video_path);
    if (heap_path) {
        int heap = open(heap_path, O_RDONLY | O_CLOEXEC);
        if (heap < 0) return fail(f, -errno, "open", heap_path);
        for (uint32_t i = 0; i < f->buffers && ret >= 0; i++) {
            struct dma_heap_allocation_data data = { .len = f->sizeimage, .fd_flags = O_RDWR | O_CLOEXEC };
            ret = xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data);
            if (ret >= 0) f->dmabufs[i] = (int)data.fd;
        }
        close(heap);
        if (ret < 0) return fail(f, ret, "DMA_HEAP_IOCTL_ALLOC", heap_path);
    } else {
        for (uint32_t i = 0; i < f->buffers; i++) {
            struct v4l2_exportbuffer export = { .type = f->type, .index = i, .flags = O_RDWR | O_CLOEXEC };
            ret = xioctl(f->video, VIDIOC_EXPBUF, &export);
            if (ret < 0) return fail(f, ret, "VIDIOC_EXPBUF", video_path);
            f->dmabufs[i] = export.fd;
        }
    }
    for (uint32_t i = 0; i < f->buffers; i++) {
        if (drmPrimeFDToHandle(f->drm, f->dmabufs[i], &f->handles[i]))
            return fail(f, -errno, "DRM_IOCTL_PRIME_FD_TO_HANDLE", drm_path);
        uint32_t handles[4] = { f->handles[i] }, pitches[4] = { pitch }, offsets[4] = { 0 };
        if (drmModeAddFB2(f->drm, width, height, DRM_FORMAT_XRGB8888, handles, pitches, offsets, &f->framebuffers[i], 0))
            return fail(f, -errno, "DRM_IOCTL_MODE_ADDFB2", drm_path);
    }
    return 0;
}

static int queue(struct floor *f, uint32_t index, const char *path) {
    struct v4l2_plane plane;
    struct v4l2_buffer buffer;
    buffer_init(f, &buffer, &plane, index);
    int ret = xioctl(f->video, VIDIOC_QBUF, &buffer);
    return ret < 0 ? fail(f, ret, "VIDIOC_QBUF", path) : 0;
}

static int dequeue(struct floor *f, uint32_t *index, const char *path) {
    int ret = wait_readable(f->video);
    if (ret < 0) return fail(f, ret, "poll", path);
    struct v4l2_plane plane;
    struct v4l2_buffer buffer;
    buffer_init(f, &buffer, &plane, 0);
    ret = xioctl(f->video, VIDIOC_DQBUF, &buffer);
    if (ret < 0) return fail(f, ret, "VIDIOC_DQBUF", path);
    *index = buffer.index;
    return 0;
}

// Flips the plane to `framebuffer` (with the modeset on the first frame) and waits for the flip
// event, as dmabuf-pipe does: a blocking commit asking for the event, then poll and read.
static int flip(struct floor *f, uint32_t framebuffer, int modeset, uint32_t width, uint32_t height, const char *path) {
    drmModeAtomicReqPtr request = drmModeAtomicAlloc();
    if (!request) return fail(f, -ENOMEM, "drmModeAtomicAlloc", path);
    if (modeset) {
        drmModeAtomicAddProperty(request, f->crtc, f->crtc_mode_id, f->mode_blob);
        drmModeAtomicAddProperty(request, f->crtc, f->crtc_active, 1);
        drmModeAtomicAddProperty(request, f->connector, f->connector_crtc_id, f->crtc);
        drmModeAtomicAddProperty(request, f->plane, f->plane_crtc_id, f->crtc);
        drmModeAtomicAddProperty(request, f->plane, f->src_x, 0);
        drmModeAtomicAddProperty(request, f->plane, f->src_y, 0);
        drmModeAtomicAddProperty(request, f->plane, f->src_w, (uint64_t)width << 16);
        drmModeAtomicAddProperty(request, f->plane, f->src_h, (uint64_t)height << 16);
        drmModeAtomicAddProperty(request, f->plane, f->crtc_x, 0);
        drmModeAtomicAddProperty(request, f->plane, f->crtc_y, 0);
        drmModeAtomicAddProperty(request, f->plane, f->crtc_w, width);
        drmModeAtomicAddProperty(request, f->plane, f->crtc_h, height);
    }
    drmModeAtomicAddProperty(request, f->plane, f->plane_fb_id, framebuffer);
    uint32_t flags = DRM_MODE_PAGE_FLIP_EVENT | (modeset ? DRM_MODE_ATOMIC_ALLOW_MODESET : 0);
    int ret = drmModeAtomicCommit(f->drm, request, flags, NULL) ? -errno : 0;
    drmModeAtomicFree(request);
    if (ret < 0) return fail(f, ret, "DRM_IOCTL_MODE_ATOMIC", path);

    char events[1024];
    for (;;) {
        ret = wait_readable(f->drm);
        if (ret < 0) return fail(f, ret, "poll", path);
        ssize_t length;
        do length = read(f->drm, events, sizeof events); while (length < 0 && errno == EINTR);
        if (length < 0) return fail(f, -errno, "read (DRM events)", path);
        for (ssize_t offset = 0; offset + (ssize_t)sizeof(struct drm_event) <= length;) {
            struct drm_event *event = (struct drm_event *)(events + offset);
            if (event->type == DRM_EVENT_FLIP_COMPLETE) return 0;
            offset += event->length;
        }
    }
}

static void tear_down(struct floor *f) {
    if (f->streaming) {
        uint32_t type = f->type;
        xioctl(f->video, VIDIOC_STREAMOFF, &type);
    }
    if (f->displaying) {
        drmModeAtomicReqPtr request = drmModeAtomicAlloc();
        if (request) {
            drmModeAtomicAddProperty(request, f->plane, f->plane_fb_id, 0);
            drmModeAtomicAddProperty(request, f->plane, f->plane_crtc_id, 0);
            drmModeAtomicAddProperty(request, f->connector, f->connector_crtc_id, 0);
            drmModeAtomicAddProperty(request, f->crtc, f->crtc_mode_id, 0);
            drmModeAtomicAddProperty(request, f->crtc, f->crtc_active, 0);
            drmModeAtomicCommit(f->drm, request, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL);
            drmModeAtomicFree(request);
        }
    }
    for (uint32_t i = 0; i < f->buffers; i++) {
        if (f->framebuffers[i]) drmModeRmFB(f->drm, f->framebuffers[i]);
        if (f->handles[i]) drmCloseBufferHandle(f->drm, f->handles[i]);
        if (f->dmabufs[i] >= 0) close(f->dmabufs[i]);
    }
    if (f->mode_blob) drmModeDestroyPropertyBlob(f->drm, f->mode_blob);
    struct v4l2_requestbuffers release = { .count = 0, .type = f->type, .memory = f->memory };
    if (f->type) xioctl(f->video, VIDIOC_REQBUFS, &release);
    if (f->video >= 0) close(f->video);
    if (f->drm >= 0) close(f->drm);
}

int cbench_pipeline_floor(
    const char *video_path, const char *drm_path, const char *heap_path, uint32_t width, uint32_t height, uint32_t fps, uint32_t buffers,
    uint32_t frames, int bookkeeping, char *error, size_t error_size) {
    struct floor f = { .video = -1, .drm = -1, .buffers = buffers, .error = error, .error_size = error_size };
    if (error && error_size) error[0] = 0;
    for (uint32_t i = 0; i < FLOOR_MAX_BUFFERS; i++) f.dmabufs[i] = -1;
    if (buffers < 2 || buffers > FLOOR_MAX_BUFFERS || frames < 1 || fps < 1 || !width || !height) {
        snprintf(error, error_size, "buffers must be 2 to %d; frames, fps and the size above 0", FLOOR_MAX_BUFFERS);
        return -EINVAL;
    }
    int ret = 0;
    f.video = open(video_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (f.video < 0) { ret = fail(&f, -errno, "open", video_path); goto out; }
    f.drm = open(drm_path, O_RDWR | O_CLOEXEC);
    if (f.drm < 0) { ret = fail(&f, -errno, "open", drm_path); goto out; }
    if ((ret = find_display(&f, drm_path, width, height)) < 0) goto out;
    if ((ret = set_up_capture(&f, video_path, drm_path, heap_path, width, height, fps)) < 0) goto out;
    for (uint32_t i = 0; i < buffers; i++)
        if ((ret = queue(&f, i, video_path)) < 0) goto out;
    uint32_t type = f.type;
    if ((ret = xioctl(f.video, VIDIOC_STREAMON, &type)) < 0) { fail(&f, ret, "VIDIOC_STREAMON", video_path); goto out; }
    f.streaming = 1;

    // Each frame: poll, DQBUF, flip to it, wait for the flip, QBUF the frame it replaced.
    uint32_t shown = 0, index = 0;
    for (uint32_t frame = 0; frame < frames; frame++) {
        if ((ret = dequeue(&f, &index, video_path)) < 0) goto out;
        if (bookkeeping && frame > 0) {
            uint64_t sequence, ns;
            if (drmCrtcGetSequence(f.drm, f.crtc, &sequence, &ns)) {
                ret = fail(&f, -errno, "DRM_IOCTL_CRTC_GET_SEQUENCE", drm_path);
                goto out;
            }
        }
        if ((ret = flip(&f, f.framebuffers[index], frame == 0, width, height, drm_path)) < 0) goto out;
        f.displaying = 1;
        if (frame > 0 && (ret = queue(&f, shown, video_path)) < 0) goto out;
        if (bookkeeping) {
            struct pollfd next = { .fd = f.video, .events = POLLIN };
            while (poll(&next, 1, 0) < 0 && errno == EINTR) {}
        }
        shown = index;
    }
out:
    tear_down(&f);
    return ret;
}
