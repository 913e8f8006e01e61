internal import CLibPNG
import DmaBufKernel

/// Pictures a person can open: RGB24 frames written as PNG by libpng.
public enum PNGFile {
    /// Writes `rgb` (rows of `width` × 3 bytes) to `path`.
    public static func write(rgb: [UInt8], width: Int, height: Int, to path: String) throws {
        guard rgb.count >= width * height * 3 else {
            throw OutputFileError(
                "png_image_write_to_file", path: path, "\(rgb.count) bytes cannot hold \(width)x\(height) RGB pixels")
        }
        var message = [CChar](repeating: 0, count: 256)
        let status = rgb.withUnsafeBytes { pixels in
            dmabufkit_png_write_rgb(
                path, UInt32(width), UInt32(height), pixels.baseAddress, Int32(width * 3), &message, message.count)
        }
        if status != 0 {
            throw OutputFileError(
                "png_image_write_to_file", path: path,
                String(decoding: message.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self))
        }
    }
}
