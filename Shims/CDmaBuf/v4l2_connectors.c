#include "cdmabuf_v4l2.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/videodev2.h>

// Inputs, outputs, their timings and the controls that describe them: what a test rig sets to
// route one device's output back into its capture (vivid's loopback).
_Static_assert(sizeof(struct v4l2_input) == 80, "v4l2_input");
_Static_assert(sizeof(struct v4l2_output) == 72, "v4l2_output");
_Static_assert(sizeof(struct v4l2_query_ext_ctrl) == 232, "v4l2_query_ext_ctrl");
_Static_assert(sizeof(struct v4l2_querymenu) == 44, "v4l2_querymenu");
_Static_assert(sizeof(struct v4l2_dv_timings) == 132, "v4l2_dv_timings");

static int call(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg) < 0 ? -errno : 0;
}

int cdmabuf_v4l2_query_ext_ctrl(int fd, uint32_t id, struct cdmabuf_v4l2_control_info *out) {
    struct v4l2_query_ext_ctrl query;
    memset(&query, 0, sizeof query);
    query.id = id;
    int ret = call(fd, VIDIOC_QUERY_EXT_CTRL, &query);
    if (ret) return ret;
    memset(out, 0, sizeof *out);
    out->id = query.id;
    out->type = query.type;
    memcpy(out->name, query.name, sizeof out->name);
    out->name[sizeof out->name - 1] = 0;
    out->minimum = query.minimum;
    out->maximum = query.maximum;
    out->step = query.step;
    out->default_value = query.default_value;
    out->flags = query.flags;
    return 0;
}

int cdmabuf_v4l2_querymenu(int fd, uint32_t id, uint32_t index, char name[32]) {
    struct v4l2_querymenu menu;
    memset(&menu, 0, sizeof menu);
    menu.id = id;
    menu.index = index;
    int ret = call(fd, VIDIOC_QUERYMENU, &menu);
    if (ret) return ret;
    memcpy(name, menu.name, 32);
    name[31] = 0;
    return 0;
}

int cdmabuf_v4l2_enum_input(int fd, uint32_t index, struct cdmabuf_v4l2_connector *out) {
    struct v4l2_input input;
    memset(&input, 0, sizeof input);
    input.index = index;
    int ret = call(fd, VIDIOC_ENUMINPUT, &input);
    if (ret) return ret;
    memset(out, 0, sizeof *out);
    out->index = input.index;
    memcpy(out->name, input.name, sizeof out->name);
    out->name[sizeof out->name - 1] = 0;
    out->type = input.type;
    out->capabilities = input.capabilities;
    return 0;
}

int cdmabuf_v4l2_g_input(int fd, uint32_t *index) {
    int value = 0;
    int ret = call(fd, VIDIOC_G_INPUT, &value);
    if (!ret) *index = (uint32_t)value;
    return ret;
}

int cdmabuf_v4l2_s_input(int fd, uint32_t index) {
    int value = (int)index;
    return call(fd, VIDIOC_S_INPUT, &value);
}

int cdmabuf_v4l2_enum_output(int fd, uint32_t index, struct cdmabuf_v4l2_connector *out) {
    struct v4l2_output output;
    memset(&output, 0, sizeof output);
    output.index = index;
    int ret = call(fd, VIDIOC_ENUMOUTPUT, &output);
    if (ret) return ret;
    memset(out, 0, sizeof *out);
    out->index = output.index;
    memcpy(out->name, output.name, sizeof out->name);
    out->name[sizeof out->name - 1] = 0;
    out->type = output.type;
    out->capabilities = output.capabilities;
    return 0;
}

int cdmabuf_v4l2_g_output(int fd, uint32_t *index) {
    int value = 0;
    int ret = call(fd, VIDIOC_G_OUTPUT, &value);
    if (!ret) *index = (uint32_t)value;
    return ret;
}

int cdmabuf_v4l2_s_output(int fd, uint32_t index) {
    int value = (int)index;
    return call(fd, VIDIOC_S_OUTPUT, &value);
}

int cdmabuf_v4l2_g_dv_timings_size(int fd, uint32_t *width, uint32_t *height) {
    struct v4l2_dv_timings timings;
    memset(&timings, 0, sizeof timings);
    int ret = call(fd, VIDIOC_G_DV_TIMINGS, &timings);
    if (ret) return ret;
    if (timings.type != V4L2_DV_BT_656_1120) return -EINVAL;
    *width = timings.bt.width;
    *height = timings.bt.height;
    return 0;
}
