#include "cdmabuf_v4l2.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/videodev2.h>

// The kernel ABI these wrappers fill (x86-64 and arm64 layouts).
_Static_assert(sizeof(struct v4l2_capability) == 104, "v4l2_capability");
_Static_assert(sizeof(struct v4l2_format) == 208, "v4l2_format");
_Static_assert(sizeof(struct v4l2_requestbuffers) == 20, "v4l2_requestbuffers");
_Static_assert(sizeof(struct v4l2_buffer) == 88, "v4l2_buffer");
_Static_assert(sizeof(struct v4l2_plane) == 64, "v4l2_plane");
_Static_assert(sizeof(struct v4l2_exportbuffer) == 64, "v4l2_exportbuffer");
_Static_assert(sizeof(struct v4l2_ext_control) == 20, "v4l2_ext_control");
_Static_assert(sizeof(struct v4l2_create_buffers) == 256, "v4l2_create_buffers");
_Static_assert(sizeof(struct v4l2_frmsizeenum) == 44, "v4l2_frmsizeenum");
_Static_assert(sizeof(struct v4l2_frmivalenum) == 52, "v4l2_frmivalenum");
_Static_assert(sizeof(struct v4l2_streamparm) == 204, "v4l2_streamparm");
_Static_assert(VIDEO_MAX_PLANES == CDMABUF_V4L2_MAX_PLANES, "plane count");

// Linux 6.10's additions, defined here because the build host's uapi headers may predate them
// (Debian 12's are 6.1): VIDIOC_REMOVE_BUFS, and CREATE_BUFS's max_num_buffers, the word after
// `flags` (`reserved[0]` in older headers).
struct cdmabuf_v4l2_remove_buffers {
    uint32_t index;
    uint32_t count;
    uint32_t type;
    uint32_t reserved[13];
};
_Static_assert(sizeof(struct cdmabuf_v4l2_remove_buffers) == 64, "v4l2_remove_buffers");
#define CDMABUF_VIDIOC_REMOVE_BUFS _IOWR('V', 104, struct cdmabuf_v4l2_remove_buffers)
#ifdef VIDIOC_REMOVE_BUFS
_Static_assert(VIDIOC_REMOVE_BUFS == CDMABUF_VIDIOC_REMOVE_BUFS, "VIDIOC_REMOVE_BUFS");
#endif
#define CDMABUF_CREATE_BUFS_MAX_NUM_BUFFERS_OFFSET 232
_Static_assert(offsetof(struct v4l2_create_buffers, flags) + 4 == CDMABUF_CREATE_BUFS_MAX_NUM_BUFFERS_OFFSET,
               "v4l2_create_buffers.max_num_buffers");

static int call(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg) < 0 ? -errno : 0;
}

static int is_mplane(uint32_t type) {
    return type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE || type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

int cdmabuf_v4l2_querycap(int fd, struct cdmabuf_v4l2_capability *out) {
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    int ret = call(fd, VIDIOC_QUERYCAP, &cap);
    if (ret) return ret;
    memcpy(out->driver, cap.driver, sizeof out->driver);
    memcpy(out->card, cap.card, sizeof out->card);
    memcpy(out->bus_info, cap.bus_info, sizeof out->bus_info);
    out->version = cap.version;
    out->capabilities = cap.capabilities;
    out->device_caps = cap.device_caps;
    return 0;
}

int cdmabuf_v4l2_enum_fmt(int fd, uint32_t type, uint32_t index, uint32_t *pixelformat) {
    struct v4l2_fmtdesc desc;
    memset(&desc, 0, sizeof desc);
    desc.type = type;
    desc.index = index;
    int ret = call(fd, VIDIOC_ENUM_FMT, &desc);
    if (!ret) *pixelformat = desc.pixelformat;
    return ret;
}

static void to_kernel_format(const struct cdmabuf_v4l2_format *in, struct v4l2_format *out) {
    memset(out, 0, sizeof *out);
    out->type = in->type;
    if (is_mplane(in->type)) {
        out->fmt.pix_mp.width = in->width;
        out->fmt.pix_mp.height = in->height;
        out->fmt.pix_mp.pixelformat = in->pixelformat;
        out->fmt.pix_mp.field = in->field;
        out->fmt.pix_mp.colorspace = in->colorspace;
        out->fmt.pix_mp.num_planes = (uint8_t)in->num_planes;
        for (uint32_t i = 0; i < in->num_planes && i < VIDEO_MAX_PLANES; i++) {
            out->fmt.pix_mp.plane_fmt[i].bytesperline = in->planes[i].bytesperline;
            out->fmt.pix_mp.plane_fmt[i].sizeimage = in->planes[i].sizeimage;
        }
    } else {
        out->fmt.pix.width = in->width;
        out->fmt.pix.height = in->height;
        out->fmt.pix.pixelformat = in->pixelformat;
        out->fmt.pix.field = in->field;
        out->fmt.pix.colorspace = in->colorspace;
        out->fmt.pix.bytesperline = in->planes[0].bytesperline;
        out->fmt.pix.sizeimage = in->planes[0].sizeimage;
    }
}

static void from_kernel_format(const struct v4l2_format *in, struct cdmabuf_v4l2_format *out) {
    memset(out, 0, sizeof *out);
    out->type = in->type;
    if (is_mplane(in->type)) {
        out->width = in->fmt.pix_mp.width;
        out->height = in->fmt.pix_mp.height;
        out->pixelformat = in->fmt.pix_mp.pixelformat;
        out->field = in->fmt.pix_mp.field;
        out->colorspace = in->fmt.pix_mp.colorspace;
        out->num_planes = in->fmt.pix_mp.num_planes;
        for (uint32_t i = 0; i < out->num_planes && i < VIDEO_MAX_PLANES; i++) {
            out->planes[i].bytesperline = in->fmt.pix_mp.plane_fmt[i].bytesperline;
            out->planes[i].sizeimage = in->fmt.pix_mp.plane_fmt[i].sizeimage;
        }
    } else {
        out->width = in->fmt.pix.width;
        out->height = in->fmt.pix.height;
        out->pixelformat = in->fmt.pix.pixelformat;
        out->field = in->fmt.pix.field;
        out->colorspace = in->fmt.pix.colorspace;
        out->num_planes = 1;
        out->planes[0].bytesperline = in->fmt.pix.bytesperline;
        out->planes[0].sizeimage = in->fmt.pix.sizeimage;
    }
}

static int format_call(int fd, unsigned long request, struct cdmabuf_v4l2_format *format) {
    struct v4l2_format kernel;
    to_kernel_format(format, &kernel);
    int ret = call(fd, request, &kernel);
    if (!ret) from_kernel_format(&kernel, format);
    return ret;
}

int cdmabuf_v4l2_g_fmt(int fd, struct cdmabuf_v4l2_format *format) { return format_call(fd, VIDIOC_G_FMT, format); }
int cdmabuf_v4l2_s_fmt(int fd, struct cdmabuf_v4l2_format *format) { return format_call(fd, VIDIOC_S_FMT, format); }
int cdmabuf_v4l2_try_fmt(int fd, struct cdmabuf_v4l2_format *format) { return format_call(fd, VIDIOC_TRY_FMT, format); }

int cdmabuf_v4l2_reqbufs(int fd, uint32_t type, uint32_t memory, uint32_t *count, uint32_t *capabilities) {
    struct v4l2_requestbuffers req;
    memset(&req, 0, sizeof req);
    req.type = type;
    req.memory = memory;
    req.count = *count;
    int ret = call(fd, VIDIOC_REQBUFS, &req);
    if (!ret) {
        *count = req.count;
        *capabilities = req.capabilities;
    }
    return ret;
}

int cdmabuf_v4l2_create_bufs(int fd, uint32_t memory, const struct cdmabuf_v4l2_format *format,
                             uint32_t *index, uint32_t *count, uint32_t *capabilities, uint32_t *max_num_buffers) {
    struct v4l2_create_buffers create;
    memset(&create, 0, sizeof create);
    create.memory = memory;
    create.count = *count;
    to_kernel_format(format, &create.format);
    int ret = call(fd, VIDIOC_CREATE_BUFS, &create);
    if (!ret) {
        *index = create.index;
        *count = create.count;
        *capabilities = create.capabilities;
        memcpy(max_num_buffers, (const char *)&create + CDMABUF_CREATE_BUFS_MAX_NUM_BUFFERS_OFFSET,
               sizeof *max_num_buffers);
    }
    return ret;
}

int cdmabuf_v4l2_remove_bufs(int fd, uint32_t type, uint32_t index, uint32_t count) {
    struct cdmabuf_v4l2_remove_buffers remove;
    memset(&remove, 0, sizeof remove);
    remove.index = index;
    remove.count = count;
    remove.type = type;
    return call(fd, CDMABUF_VIDIOC_REMOVE_BUFS, &remove);
}

int cdmabuf_v4l2_enum_framesizes(int fd, uint32_t pixelformat, uint32_t index, struct cdmabuf_v4l2_frame_size *out) {
    struct v4l2_frmsizeenum size;
    memset(&size, 0, sizeof size);
    size.index = index;
    size.pixel_format = pixelformat;
    int ret = call(fd, VIDIOC_ENUM_FRAMESIZES, &size);
    if (ret) return ret;
    memset(out, 0, sizeof *out);
    out->type = size.type;
    if (size.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
        out->width = size.discrete.width;
        out->height = size.discrete.height;
    } else {
        out->min_width = size.stepwise.min_width;
        out->max_width = size.stepwise.max_width;
        out->step_width = size.stepwise.step_width;
        out->min_height = size.stepwise.min_height;
        out->max_height = size.stepwise.max_height;
        out->step_height = size.stepwise.step_height;
    }
    return 0;
}

int cdmabuf_v4l2_enum_frameintervals(int fd, uint32_t pixelformat, uint32_t width, uint32_t height, uint32_t index,
                                     struct cdmabuf_v4l2_frame_interval *out) {
    struct v4l2_frmivalenum interval;
    memset(&interval, 0, sizeof interval);
    interval.index = index;
    interval.pixel_format = pixelformat;
    interval.width = width;
    interval.height = height;
    int ret = call(fd, VIDIOC_ENUM_FRAMEINTERVALS, &interval);
    if (ret) return ret;
    memset(out, 0, sizeof *out);
    out->type = interval.type;
    if (interval.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
        out->numerator = interval.discrete.numerator;
        out->denominator = interval.discrete.denominator;
    } else {
        out->numerator = interval.stepwise.min.numerator;
        out->denominator = interval.stepwise.min.denominator;
        out->max_numerator = interval.stepwise.max.numerator;
        out->max_denominator = interval.stepwise.max.denominator;
        out->step_numerator = interval.stepwise.step.numerator;
        out->step_denominator = interval.stepwise.step.denominator;
    }
    return 0;
}

static int is_output(uint32_t type) {
    return type == V4L2_BUF_TYPE_VIDEO_OUTPUT || type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

static int parm_call(int fd, unsigned long request, uint32_t type, uint32_t *numerator, uint32_t *denominator) {
    struct v4l2_streamparm parm;
    memset(&parm, 0, sizeof parm);
    parm.type = type;
    struct v4l2_fract *frame = is_output(type) ? &parm.parm.output.timeperframe : &parm.parm.capture.timeperframe;
    frame->numerator = *numerator;
    frame->denominator = *denominator;
    int ret = call(fd, request, &parm);
    if (!ret) {
        *numerator = frame->numerator;
        *denominator = frame->denominator;
    }
    return ret;
}

int cdmabuf_v4l2_g_parm(int fd, uint32_t type, uint32_t *numerator, uint32_t *denominator) {
    return parm_call(fd, VIDIOC_G_PARM, type, numerator, denominator);
}
int cdmabuf_v4l2_s_parm(int fd, uint32_t type, uint32_t *numerator, uint32_t *denominator) {
    return parm_call(fd, VIDIOC_S_PARM, type, numerator, denominator);
}

// Fills a kernel v4l2_buffer (and its plane array) from the flat struct.
static void to_kernel_buffer(const struct cdmabuf_v4l2_buffer *in, struct v4l2_buffer *out, struct v4l2_plane *planes) {
    memset(out, 0, sizeof *out);
    memset(planes, 0, sizeof(struct v4l2_plane) * VIDEO_MAX_PLANES);
    out->index = in->index;
    out->type = in->type;
    out->memory = in->memory;
    out->flags = in->flags;
    out->field = in->field;
    out->timestamp.tv_sec = in->timestamp_sec;
    out->timestamp.tv_usec = in->timestamp_usec;
    if (is_mplane(in->type)) {
        out->length = in->num_planes;
        out->m.planes = planes;
        for (uint32_t i = 0; i < in->num_planes && i < VIDEO_MAX_PLANES; i++) {
            planes[i].bytesused = in->planes[i].bytesused;
            planes[i].length = in->planes[i].length;
            planes[i].data_offset = in->planes[i].data_offset;
            if (in->memory == V4L2_MEMORY_DMABUF) planes[i].m.fd = in->planes[i].fd;
        }
    } else {
        out->bytesused = in->planes[0].bytesused;
        out->length = in->planes[0].length;
        if (in->memory == V4L2_MEMORY_DMABUF) out->m.fd = in->planes[0].fd;
    }
}

static void from_kernel_buffer(const struct v4l2_buffer *in, const struct v4l2_plane *planes, struct cdmabuf_v4l2_buffer *out) {
    uint32_t memory = in->memory;
    out->index = in->index;
    out->type = in->type;
    out->memory = memory;
    out->flags = in->flags;
    out->field = in->field;
    out->sequence = in->sequence;
    out->timestamp_sec = in->timestamp.tv_sec;
    out->timestamp_usec = in->timestamp.tv_usec;
    if (is_mplane(in->type)) {
        out->num_planes = in->length;
        for (uint32_t i = 0; i < in->length && i < VIDEO_MAX_PLANES; i++) {
            out->planes[i].bytesused = planes[i].bytesused;
            out->planes[i].length = planes[i].length;
            out->planes[i].data_offset = planes[i].data_offset;
            out->planes[i].mem_offset = memory == V4L2_MEMORY_MMAP ? planes[i].m.mem_offset : 0;
            out->planes[i].fd = memory == V4L2_MEMORY_DMABUF ? planes[i].m.fd : -1;
        }
    } else {
        out->num_planes = 1;
        out->planes[0].bytesused = in->bytesused;
        out->planes[0].length = in->length;
        out->planes[0].data_offset = 0;
        out->planes[0].mem_offset = memory == V4L2_MEMORY_MMAP ? in->m.offset : 0;
        out->planes[0].fd = memory == V4L2_MEMORY_DMABUF ? in->m.fd : -1;
    }
}

static int buffer_call(int fd, unsigned long request, struct cdmabuf_v4l2_buffer *buffer) {
    struct v4l2_buffer kernel;
    struct v4l2_plane planes[VIDEO_MAX_PLANES];
    to_kernel_buffer(buffer, &kernel, planes);
    int ret = call(fd, request, &kernel);
    if (!ret) from_kernel_buffer(&kernel, planes, buffer);
    return ret;
}

int cdmabuf_v4l2_querybuf(int fd, struct cdmabuf_v4l2_buffer *buffer) { return buffer_call(fd, VIDIOC_QUERYBUF, buffer); }
int cdmabuf_v4l2_qbuf(int fd, struct cdmabuf_v4l2_buffer *buffer) { return buffer_call(fd, VIDIOC_QBUF, buffer); }
int cdmabuf_v4l2_dqbuf(int fd, struct cdmabuf_v4l2_buffer *buffer) { return buffer_call(fd, VIDIOC_DQBUF, buffer); }

int cdmabuf_v4l2_expbuf(int fd, uint32_t type, uint32_t index, uint32_t plane, uint32_t flags) {
    struct v4l2_exportbuffer exp;
    memset(&exp, 0, sizeof exp);
    exp.type = type;
    exp.index = index;
    exp.plane = plane;
    exp.flags = flags;
    int ret = call(fd, VIDIOC_EXPBUF, &exp);
    return ret ? ret : exp.fd;
}

int cdmabuf_v4l2_streamon(int fd, uint32_t type) { return call(fd, VIDIOC_STREAMON, &type); }
int cdmabuf_v4l2_streamoff(int fd, uint32_t type) { return call(fd, VIDIOC_STREAMOFF, &type); }

static int ext_ctrl(int fd, unsigned long request, uint32_t id, int64_t *value) {
    struct v4l2_ext_control control;
    struct v4l2_ext_controls controls;
    memset(&control, 0, sizeof control);
    memset(&controls, 0, sizeof controls);
    control.id = id;
    control.value = (int32_t)*value;  // the 32-bit controls (integer, boolean, menu) DmaBufKit sets
    controls.which = V4L2_CTRL_WHICH_CUR_VAL;
    controls.count = 1;
    controls.controls = &control;
    int ret = call(fd, request, &controls);
    if (!ret) *value = control.value;
    return ret;
}

int cdmabuf_v4l2_s_ctrl(int fd, uint32_t id, int64_t value) { return ext_ctrl(fd, VIDIOC_S_EXT_CTRLS, id, &value); }
int cdmabuf_v4l2_g_ctrl(int fd, uint32_t id, int64_t *value) { return ext_ctrl(fd, VIDIOC_G_EXT_CTRLS, id, value); }

