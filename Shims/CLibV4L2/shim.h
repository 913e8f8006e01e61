// libv4l2 and libv4lconvert (Debian: libv4l-dev).
#include <linux/videodev2.h>
#include <libv4l2.h>
#include <libv4lconvert.h>
