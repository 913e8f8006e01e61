// libv4l2 and libv4lconvert (Debian: libv4l-dev).
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <linux/videodev2.h>
#include <libv4l2.h>
#include <libv4l-plugin.h>
#include <libv4lconvert.h>

// libv4lconvert asks its device for capabilities and formats when created. A converter for
// frames that are already in memory gets device ops that answer QUERYCAP as a plain capture
// device and refuse the rest, so no real (or simulated) node is touched.
static int dmabufkit_v4lconvert_ioctl(void *priv, int fd, unsigned long request, void *arg) {
    (void)priv; (void)fd;
    if (request == VIDIOC_QUERYCAP) {
        struct v4l2_capability *cap = (struct v4l2_capability *)arg;
        memset(cap, 0, sizeof *cap);
        strcpy((char *)cap->driver, "dmabufkit");
        cap->capabilities = cap->device_caps = V4L2_CAP_VIDEO_CAPTURE;
        return 0;
    }
    errno = ENOTTY;
    return -1;
}
static ssize_t dmabufkit_v4lconvert_read(void *priv, int fd, void *buffer, size_t n) {
    (void)priv; (void)fd; (void)buffer; (void)n;
    errno = EINVAL;
    return -1;
}
static ssize_t dmabufkit_v4lconvert_write(void *priv, int fd, const void *buffer, size_t n) {
    (void)priv; (void)fd; (void)buffer; (void)n;
    errno = EINVAL;
    return -1;
}
static const struct libv4l_dev_ops dmabufkit_v4lconvert_ops = {
    .ioctl = dmabufkit_v4lconvert_ioctl, .read = dmabufkit_v4lconvert_read, .write = dmabufkit_v4lconvert_write,
};

static inline struct v4lconvert_data *dmabufkit_v4lconvert_create(void) {
    return v4lconvert_create_with_dev_ops(-1, NULL, &dmabufkit_v4lconvert_ops);
}

// v4lconvert_convert between two single-planar formats; the bytes written, or -errno.
static inline int dmabufkit_v4lconvert_convert(struct v4lconvert_data *data, uint32_t width, uint32_t height,
                                               uint32_t source_fourcc, uint32_t source_bytesperline,
                                               const void *source, uint32_t source_size,
                                               uint32_t destination_fourcc, uint32_t destination_bytesperline,
                                               void *destination, uint32_t destination_size) {
    struct v4l2_format from, to;
    memset(&from, 0, sizeof from);
    memset(&to, 0, sizeof to);
    from.type = to.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    from.fmt.pix.width = to.fmt.pix.width = width;
    from.fmt.pix.height = to.fmt.pix.height = height;
    from.fmt.pix.field = to.fmt.pix.field = V4L2_FIELD_NONE;
    from.fmt.pix.pixelformat = source_fourcc;
    from.fmt.pix.bytesperline = source_bytesperline;
    from.fmt.pix.sizeimage = source_size;
    to.fmt.pix.pixelformat = destination_fourcc;
    to.fmt.pix.bytesperline = destination_bytesperline;
    to.fmt.pix.sizeimage = destination_size;
    errno = 0;
    int written = v4lconvert_convert(data, &from, &to, (unsigned char *)source, (int)source_size,
                                     (unsigned char *)destination, (int)destination_size);
    return written < 0 ? -(errno ? errno : EINVAL) : written;
}
