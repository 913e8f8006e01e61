internal import CLibV4L2
import DmaBufKernel

/// Converts captured frames between pixel formats with libv4lconvert (for comparing pixels
/// or writing pictures), without a device: conversion is all it is used for.
public struct FrameConverter: ~Copyable {
    private let data: OpaquePointer

    public init() throws(FrameConversionError) {
        guard let data = dmabufkit_v4lconvert_create() else {
            throw FrameConversionError("v4lconvert_create", "libv4lconvert could not set up a converter")
        }
        self.data = data
    }

    deinit { v4lconvert_destroy(data) }

    /// Whether libv4lconvert can produce `pixelFormat` (it converts into RGB24, BGR24, YUV420
    /// and YVU420).
    public static func canProduce(_ pixelFormat: V4L2PixelFormat) -> Bool {
        v4lconvert_supported_dst_format(pixelFormat.rawValue) != 0
    }

    /// The frame in `planes` (one per buffer plane of `format`) as tightly packed RGB24 rows.
    /// Two-buffer NV12M with unpadded rows is handed over as the one-buffer NV12 it equals.
    public func rgb24(_ planes: [[UInt8]], format: V4L2Format) throws(FrameConversionError) -> [UInt8] {
        var source = [UInt8]()
        var sourceFormat = format.pixelFormat
        let pitch = Int(format.width) * 3, size = pitch * Int(format.height)
        guard !format.planes.isEmpty, planes.count <= format.planes.count, format.width > 0, format.height > 0,
            size <= Int(UInt32.max)
        else {
            throw FrameConversionError(
                "v4lconvert_convert",
                "\(format.width)x\(format.height) with \(format.planes.count) format planes and \(planes.count) buffers is no frame to convert (an RGB24 frame must fit in 4 GiB)"
            )
        }
        if format.pixelFormat == .nv12m, planes.count == 2,
            format.planes.allSatisfy({ $0.bytesPerLine == format.width })
        {
            sourceFormat = .nv12
            source =
                Array(planes[0].prefix(Int(format.planes[0].sizeImage)))
                + Array(planes[1].prefix(Int(format.planes[1].sizeImage)))
        } else if planes.count == 1 {
            source = Array(planes[0].prefix(Int(format.planes[0].sizeImage)))
        } else {
            throw FrameConversionError(
                "v4lconvert_convert",
                "libv4lconvert converts single-buffer formats; \(format.pixelFormat) has \(planes.count) planes")
        }
        var rgb = [UInt8](repeating: 0, count: size)
        let written = source.withUnsafeBytes { from in
            rgb.withUnsafeMutableBytes { to in
                dmabufkit_v4lconvert_convert(
                    data, format.width, format.height, sourceFormat.rawValue, format.planes[0].bytesPerLine,
                    from.baseAddress, UInt32(from.count),
                    V4L2PixelFormat.rgb24.rawValue, UInt32(pitch), to.baseAddress, UInt32(to.count))
            }
        }
        guard written >= 0 else {
            let message = String(cString: v4lconvert_get_error_message(data))
            throw FrameConversionError(
                "v4lconvert_convert", errno: Errno(rawValue: -written),
                "\(sourceFormat) \(format.width)x\(format.height) to RGB3\(message.isEmpty ? "" : ": \(message)")")
        }
        return rgb
    }
}

@available(*, unavailable, message: "libv4lconvert's context is not thread-safe")
extension FrameConverter: Sendable {}

/// A frame libv4lconvert could not convert (a format it does not take, a frame that does
/// not fit its format): the libv4lconvert call, its errno when it gave one, and why.
public struct FrameConversionError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Errno?
    public var problem: String

    public init(_ operation: String, errno: Errno? = nil, _ problem: String) {
        (self.operation, self.errno, self.problem) = (operation, errno, problem)
    }

    public var description: String { "\(operation) failed" + (errno.map { ": \($0)" } ?? "") + ": \(problem)" }
}
