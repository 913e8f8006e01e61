// cdmabuf V4L2: one function per V4L2 ioctl DmaBufKit uses, over flat structs that hold
// both the single- and the multi-planar layouts (Swift cannot reach the kernel's unions and
// plane pointers safely). Same rules as cdmabuf.h: 0 or a value >= 0, else -errno; no retries.
#ifndef CDMABUF_V4L2_H
#define CDMABUF_V4L2_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CDMABUF_V4L2_MAX_PLANES 8

struct cdmabuf_v4l2_capability {
    char driver[16];
    char card[32];
    char bus_info[32];
    uint32_t version;
    uint32_t capabilities;
    uint32_t device_caps;
};

struct cdmabuf_v4l2_plane_format {
    uint32_t bytesperline;
    uint32_t sizeimage;
};

// v4l2_format's pix (single-planar types) or pix_mp (multi-planar types).
struct cdmabuf_v4l2_format {
    uint32_t type;
    uint32_t width;
    uint32_t height;
    uint32_t pixelformat;
    uint32_t field;
    uint32_t colorspace;
    uint32_t num_planes;   // 1 for single-planar types
    struct cdmabuf_v4l2_plane_format planes[CDMABUF_V4L2_MAX_PLANES];
};

struct cdmabuf_v4l2_plane {
    uint32_t bytesused;
    uint32_t length;
    uint32_t data_offset;  // multi-planar only
    uint32_t mem_offset;   // MMAP: the offset to mmap
    int32_t fd;            // DMABUF: the dma-buf
};

// v4l2_buffer; single-planar types use planes[0] only.
struct cdmabuf_v4l2_buffer {
    uint32_t index;
    uint32_t type;
    uint32_t memory;
    uint32_t flags;
    uint32_t field;
    uint32_t sequence;
    int64_t timestamp_sec;
    int64_t timestamp_usec;
    uint32_t num_planes;
    struct cdmabuf_v4l2_plane planes[CDMABUF_V4L2_MAX_PLANES];
};

// v4l2_frmsizeenum: type 1 discrete (width, height), 2 continuous / 3 stepwise (the ranges).
struct cdmabuf_v4l2_frame_size {
    uint32_t type;
    uint32_t width, height;
    uint32_t min_width, max_width, step_width;
    uint32_t min_height, max_height, step_height;
};

// v4l2_frmivalenum: type 1 discrete (numerator/denominator), else min, max and step.
struct cdmabuf_v4l2_frame_interval {
    uint32_t type;
    uint32_t numerator, denominator;  // discrete, or the stepwise minimum
    uint32_t max_numerator, max_denominator;
    uint32_t step_numerator, step_denominator;
};

// v4l2_input / v4l2_output: a connector of the node (a camera, an HDMI input, an HDMI output, …).
struct cdmabuf_v4l2_connector {
    uint32_t index;
    char name[32];
    uint32_t type;          // V4L2_INPUT_TYPE_* or V4L2_OUTPUT_TYPE_*
    uint32_t capabilities;  // V4L2_IN_CAP_* or V4L2_OUT_CAP_* (DV timings, standards)
};

// v4l2_query_ext_ctrl, without the array fields: what a control is.
struct cdmabuf_v4l2_control_info {
    uint32_t id;
    uint32_t type;  // V4L2_CTRL_TYPE_*
    char name[32];
    int64_t minimum, maximum;
    uint64_t step;
    int64_t default_value;
    uint32_t flags;
};

int cdmabuf_v4l2_querycap(int fd, struct cdmabuf_v4l2_capability *out);
int cdmabuf_v4l2_enum_fmt(int fd, uint32_t type, uint32_t index, uint32_t *pixelformat);
int cdmabuf_v4l2_g_fmt(int fd, struct cdmabuf_v4l2_format *format);   // in: type
int cdmabuf_v4l2_s_fmt(int fd, struct cdmabuf_v4l2_format *format);
int cdmabuf_v4l2_try_fmt(int fd, struct cdmabuf_v4l2_format *format);
int cdmabuf_v4l2_reqbufs(int fd, uint32_t type, uint32_t memory, uint32_t *count, uint32_t *capabilities);
// VIDIOC_CREATE_BUFS: in: *count buffers sized for format; out: the first new index, the count
// made, the queue's V4L2_BUF_CAP_* and (with V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS, 6.10) the
// most buffers the queue can hold.
int cdmabuf_v4l2_create_bufs(int fd, uint32_t memory, const struct cdmabuf_v4l2_format *format,
                             uint32_t *index, uint32_t *count, uint32_t *capabilities, uint32_t *max_num_buffers);
// VIDIOC_REMOVE_BUFS (6.10): frees count buffers from index on (ENOTTY before).
int cdmabuf_v4l2_remove_bufs(int fd, uint32_t type, uint32_t index, uint32_t count);
int cdmabuf_v4l2_enum_framesizes(int fd, uint32_t pixelformat, uint32_t index, struct cdmabuf_v4l2_frame_size *out);
int cdmabuf_v4l2_enum_frameintervals(int fd, uint32_t pixelformat, uint32_t width, uint32_t height, uint32_t index,
                                     struct cdmabuf_v4l2_frame_interval *out);
// VIDIOC_G_PARM / VIDIOC_S_PARM: the time per frame of a capture or output type.
int cdmabuf_v4l2_g_parm(int fd, uint32_t type, uint32_t *numerator, uint32_t *denominator);
int cdmabuf_v4l2_s_parm(int fd, uint32_t type, uint32_t *numerator, uint32_t *denominator);
int cdmabuf_v4l2_querybuf(int fd, struct cdmabuf_v4l2_buffer *buffer); // in: index, type, memory, num_planes
int cdmabuf_v4l2_qbuf(int fd, struct cdmabuf_v4l2_buffer *buffer);
int cdmabuf_v4l2_dqbuf(int fd, struct cdmabuf_v4l2_buffer *buffer);    // in: type, memory, num_planes
int cdmabuf_v4l2_expbuf(int fd, uint32_t type, uint32_t index, uint32_t plane, uint32_t flags); // new fd
int cdmabuf_v4l2_streamon(int fd, uint32_t type);
int cdmabuf_v4l2_streamoff(int fd, uint32_t type);
int cdmabuf_v4l2_s_ctrl(int fd, uint32_t id, int64_t value);           // VIDIOC_S_EXT_CTRLS, one control
int cdmabuf_v4l2_g_ctrl(int fd, uint32_t id, int64_t *value);          // VIDIOC_G_EXT_CTRLS, one control
// VIDIOC_QUERY_EXT_CTRL: `id` may carry V4L2_CTRL_FLAG_NEXT_CTRL (the next control after it).
int cdmabuf_v4l2_query_ext_ctrl(int fd, uint32_t id, struct cdmabuf_v4l2_control_info *out);
// VIDIOC_QUERYMENU: the name of a menu control's item (EINVAL for an item the driver skips).
int cdmabuf_v4l2_querymenu(int fd, uint32_t id, uint32_t index, char name[32]);
// VIDIOC_ENUMINPUT / G_INPUT / S_INPUT and the same for outputs.
int cdmabuf_v4l2_enum_input(int fd, uint32_t index, struct cdmabuf_v4l2_connector *out);
int cdmabuf_v4l2_g_input(int fd, uint32_t *index);
int cdmabuf_v4l2_s_input(int fd, uint32_t index);
int cdmabuf_v4l2_enum_output(int fd, uint32_t index, struct cdmabuf_v4l2_connector *out);
int cdmabuf_v4l2_g_output(int fd, uint32_t *index);
int cdmabuf_v4l2_s_output(int fd, uint32_t index);
// VIDIOC_G_DV_TIMINGS: the active digital video timings' frame size (BT.656/1120 timings).
int cdmabuf_v4l2_g_dv_timings_size(int fd, uint32_t *width, uint32_t *height);

// v4l2_event, the parts a stateful codec's client reads: which event, and for a source change
// what changed (V4L2_EVENT_SRC_CH_RESOLUTION).
struct cdmabuf_v4l2_event {
    uint32_t type;
    uint32_t changes;
    uint32_t pending;
    uint32_t sequence;
};
// VIDIOC_SUBSCRIBE_EVENT of `type` (id 0, no flags).
int cdmabuf_v4l2_subscribe_event(int fd, uint32_t type);
// VIDIOC_DQEVENT: the oldest pending event (ENOENT when none is).
int cdmabuf_v4l2_dqevent(int fd, struct cdmabuf_v4l2_event *out);
// VIDIOC_ENCODER_CMD / VIDIOC_DECODER_CMD: `cmd` (V4L2_ENC_CMD_* / V4L2_DEC_CMD_*) with `flags`.
int cdmabuf_v4l2_encoder_cmd(int fd, uint32_t cmd, uint32_t flags);
int cdmabuf_v4l2_decoder_cmd(int fd, uint32_t cmd, uint32_t flags);

#ifdef __cplusplus
}
#endif
#endif
