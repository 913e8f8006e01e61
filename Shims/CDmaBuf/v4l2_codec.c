#include "cdmabuf_v4l2.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/videodev2.h>

// What a stateful codec's client needs beyond buffers: events (source change, end of stream)
// and the encoder/decoder commands that drain it (Documentation/userspace-api/media/v4l/
// dev-encoder.rst, dev-decoder.rst).
_Static_assert(sizeof(struct v4l2_event_subscription) == 32, "v4l2_event_subscription");
_Static_assert(sizeof(struct v4l2_event) == 136, "v4l2_event");
_Static_assert(sizeof(struct v4l2_encoder_cmd) == 40, "v4l2_encoder_cmd");
_Static_assert(sizeof(struct v4l2_decoder_cmd) == 72, "v4l2_decoder_cmd");

static int call(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg) < 0 ? -errno : 0;
}

int cdmabuf_v4l2_subscribe_event(int fd, uint32_t type) {
    struct v4l2_event_subscription subscription;
    memset(&subscription, 0, sizeof subscription);
    subscription.type = type;
    return call(fd, VIDIOC_SUBSCRIBE_EVENT, &subscription);
}

int cdmabuf_v4l2_dqevent(int fd, struct cdmabuf_v4l2_event *out) {
    struct v4l2_event event;
    memset(&event, 0, sizeof event);
    int ret = call(fd, VIDIOC_DQEVENT, &event);
    if (ret) return ret;
    memset(out, 0, sizeof *out);
    out->type = event.type;
    if (event.type == V4L2_EVENT_SOURCE_CHANGE) out->changes = event.u.src_change.changes;
    out->pending = event.pending;
    out->sequence = event.sequence;
    return 0;
}

int cdmabuf_v4l2_encoder_cmd(int fd, uint32_t cmd, uint32_t flags) {
    struct v4l2_encoder_cmd command;
    memset(&command, 0, sizeof command);
    command.cmd = cmd;
    command.flags = flags;
    return call(fd, VIDIOC_ENCODER_CMD, &command);
}

int cdmabuf_v4l2_decoder_cmd(int fd, uint32_t cmd, uint32_t flags) {
    struct v4l2_decoder_cmd command;
    memset(&command, 0, sizeof command);
    command.cmd = cmd;
    command.flags = flags;
    return call(fd, VIDIOC_DECODER_CMD, &command);
}
