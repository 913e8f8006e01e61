// libpng (Debian: libpng-dev), through its simplified API.
#include <stdint.h>
#include <string.h>
#include <png.h>

// Writes tightly or loosely packed RGB24 rows as a PNG file; 0, or -1 with libpng's message.
static inline int dmabufkit_png_write_rgb(const char *path, uint32_t width, uint32_t height, const void *rgb, int32_t stride,
                                          char *message, size_t message_size) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&image, path, 0, rgb, stride, NULL);
    if (!ok && message_size > 0) {
        strncpy(message, image.message, message_size - 1);
        message[message_size - 1] = 0;
    }
    png_image_free(&image);
    return ok ? 0 : -1;
}

// Reads a PNG file as RGB24: first call with rgb NULL for the size; 0 or -1.
static inline int dmabufkit_png_read_rgb(const char *path, uint32_t *width, uint32_t *height, void *rgb, size_t size) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path)) return -1;
    *width = image.width;
    *height = image.height;
    if (rgb == NULL) {
        png_image_free(&image);
        return 0;
    }
    image.format = PNG_FORMAT_RGB;
    if (size < PNG_IMAGE_SIZE(image)) {
        png_image_free(&image);
        return -1;
    }
    int ok = png_image_finish_read(&image, NULL, rgb, 0, NULL);
    png_image_free(&image);
    return ok ? 0 : -1;
}
