// dmabuf-bench-floor: the C floor dmabuf-bench costs dmabuf-pipe against (cbench_pipeline_floor).
#include "cbenchreference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: dmabuf-bench-floor [--bookkeeping] VIDEO DRM WIDTHxHEIGHT FPS BUFFERS FRAMES [HEAP]\n"
    "  Zero-copy capture -> display with only the system calls it needs: VIDEO's MMAP buffers\n"
    "  (XR24) exported, or with HEAP (e.g. /dev/dma_heap/system) buffers allocated there and\n"
    "  queued as DMABUF; imported by DRM and flipped to one per frame, each requeued once the\n"
    "  next is on screen. --bookkeeping adds the two calls dmabuf-pipe makes per frame for its\n"
    "  report: DRM_IOCTL_CRTC_GET_SEQUENCE before a flip, a poll that does not wait after QBUF.\n"
    "  E.g. dmabuf-bench-floor /dev/video0 /dev/dri/card0 640x480 5 4 75\n";

static int number(const char *text, unsigned long *value) {
    char *end;
    *value = strtoul(text, &end, 10);
    return *text && !*end && *value <= 1000000;
}

int main(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    int bookkeeping = argc > 1 && !strcmp(argv[1], "--bookkeeping");
    if (bookkeeping) {
        argv++;
        argc--;
    }
    unsigned width, height;
    unsigned long fps, buffers, frames;
    char tail;
    if ((argc != 7 && argc != 8) || sscanf(argv[3], "%ux%u%c", &width, &height, &tail) != 2 || !number(argv[4], &fps)
        || !number(argv[5], &buffers) || !number(argv[6], &frames)) {
        fputs(usage, stderr);
        return 64;
    }
    char error[256];
    int ret = cbench_pipeline_floor(argv[1], argv[2], argc == 8 ? argv[7] : NULL, width, height, fps, buffers, frames, bookkeeping, error, sizeof error);
    if (ret < 0) {
        fprintf(stderr, "dmabuf-bench-floor: %s\n", error[0] ? error : strerror(-ret));
        return 1;
    }
    printf("%lu frames shown\n", frames);
    return 0;
}
