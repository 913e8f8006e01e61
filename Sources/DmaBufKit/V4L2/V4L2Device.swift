import DmaBufKernel
import Foundation

/// An open V4L2 video node (`/dev/videoN`), found by its name (e.g. `vivid-000-vid-cap`) since
/// numbers are not stable.
public struct V4L2Device: ~Copyable {
    public let descriptor: OwnedDescriptor
    public let capability: V4L2Capability

    /// Opens `path` read-write, non-blocking by default (a dequeue with nothing ready is then
    /// a result, not a wait).
    public init(path: String, kernel: any Kernel, nonBlocking: Bool = true) throws(KernelError) {
        let descriptor: OwnedDescriptor
        do {
            descriptor = try kernel.openOwned(
                path, flags: nonBlocking ? [.readWrite, .closeOnExec, .nonBlocking] : [.readWrite, .closeOnExec])
        } catch { throw error.explained(deviceOpenAdvice(error, node: path)) }
        capability = try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2QueryCapability(fd) }
        self.descriptor = descriptor
    }

    /// Every video node with its name, as sysfs lists them.
    public static func nodes(kernel: any Kernel) throws(KernelError) -> [(path: String, name: String)] {
        let entries: [String]
        do { entries = try kernel.listDirectory(KernelPaths.videoSysfsDirectory) } catch {
            if error.errno == .ENOENT { return [] }
            throw error
        }
        var nodes: [(path: String, name: String)] = []
        for entry in entries.filter({ $0.hasPrefix("video") }).sorted(by: { ($0.count, $0) < ($1.count, $1) }) {
            // A node that went away since the listing is gone; any other failure is reported, never skipped.
            do {
                nodes.append(
                    (
                        "/dev/\(entry)",
                        try kernel.readFile("\(KernelPaths.videoSysfsDirectory)/\(entry)/name").trimmingCharacters(
                            in: .newlines)
                    ))
            } catch {
                if error.errno != .ENOENT {
                    throw error.at("\(KernelPaths.videoSysfsDirectory)/\(entry)/name").explained(
                        "cannot read the node's name")
                }
            }
        }
        return nodes
    }

    /// Opens the node called `name`.
    public init(name: String, kernel: any Kernel, nonBlocking: Bool = true) throws(KernelError) {
        let nodes = try Self.nodes(kernel: kernel)
        guard let node = nodes.first(where: { $0.name == name }) else {
            throw KernelError(
                "open", .ENOENT, path: "\(KernelPaths.videoSysfsDirectory)/video*/name",
                reason:
                    "no video node is named \(name) (found: \(nodes.isEmpty ? "none" : nodes.map(\.name).joined(separator: ", ")))"
            )
        }
        try self.init(path: node.path, kernel: kernel, nonBlocking: nonBlocking)
    }

    public var fd: FileDescriptorNumber { descriptor.fd }
    public var kernel: any Kernel { descriptor.kernel }
    public var path: String { descriptor.path }

    public consuming func close() throws(KernelError) { try descriptor.close() }

    /// The pixel formats of a buffer type (`VIDIOC_ENUM_FMT` until EINVAL).
    public func formats(_ type: V4L2BufferType) throws(KernelError) -> [V4L2PixelFormat] {
        try enumerate { index throws(KernelError) in
            try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2EnumFormat(fd, type: type, index: index)
            }
        }
    }

    public func format(_ type: V4L2BufferType) throws(KernelError) -> V4L2Format {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2GetFormat(fd, type: type) }
    }

    /// `VIDIOC_S_FMT` (or `VIDIOC_TRY_FMT`): the format the driver settled on, which may differ.
    @discardableResult
    public func setFormat(_ format: V4L2Format, tryOnly: Bool = false) throws(KernelError) -> V4L2Format {
        do {
            return try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2SetFormat(fd, format, tryOnly: tryOnly)
            }
        } catch {
            throw error.explained(
                error.errno == .EBUSY
                    ? "the queue is busy: buffers exist (in this or another open of the node), so its format cannot change until they are released"
                    : nil)
        }
    }

    /// The frame sizes the node offers for a pixel format (`VIDIOC_ENUM_FRAMESIZES` until EINVAL).
    public func frameSizes(_ pixelFormat: V4L2PixelFormat) throws(KernelError) -> [V4L2FrameSize] {
        try enumerate { index throws(KernelError) in
            try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2EnumFrameSize(fd, pixelFormat: pixelFormat, index: index)
            }
        }
    }

    /// The times per frame offered for a format and size (`VIDIOC_ENUM_FRAMEINTERVALS`).
    public func frameIntervals(
        _ pixelFormat: V4L2PixelFormat, width: UInt32, height: UInt32
    ) throws(KernelError) -> [V4L2FrameInterval] {
        try enumerate { index throws(KernelError) in
            try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2EnumFrameInterval(
                    fd, pixelFormat: pixelFormat, width: width, height: height, index: index)
            }
        }
    }

    /// Calls `item` with 0, 1, … until it fails with EINVAL (the end of a V4L2 enumeration).
    func enumerate<T>(_ item: (UInt32) throws(KernelError) -> T) throws(KernelError) -> [T] {
        var items: [T] = []
        while true {
            do { items.append(try item(UInt32(items.count))) } catch  where error.errno == .EINVAL { return items }
        }
    }

    /// `VIDIOC_G_PARM`: the current time per frame.
    public func frameInterval(_ type: V4L2BufferType) throws(KernelError) -> V4L2Fraction {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2GetFrameInterval(fd, type: type) }
    }

    /// `VIDIOC_S_PARM`: the time per frame the driver chose for the one asked.
    @discardableResult
    public func setFrameInterval(_ type: V4L2BufferType, _ interval: V4L2Fraction) throws(KernelError) -> V4L2Fraction {
        try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.v4l2SetFrameInterval(fd, type: type, interval)
        }
    }

    public func setControl(_ id: V4L2ControlID, _ value: Int32) throws(KernelError) {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2SetControl(fd, id: id, value: value) }
    }

    public func control(_ id: V4L2ControlID) throws(KernelError) -> Int32 {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2GetControl(fd, id: id) }
    }
}
