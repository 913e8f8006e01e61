/// The V4L2 part of the `Kernel` interface: one requirement per V4L2 ioctl the library uses,
/// with single- and multi-planar layouts in one shape (`planes` has one entry for
/// single-planar buffer types).

/// `V4L2_BUF_TYPE_*` the library drives.
public enum V4L2BufferType: UInt32, Sendable, CaseIterable {
    case videoCapture = 1
    case videoOutput = 2
    case videoCaptureMultiplanar = 9
    case videoOutputMultiplanar = 10

    public var isMultiplanar: Bool { self == .videoCaptureMultiplanar || self == .videoOutputMultiplanar }
    public var isOutput: Bool { self == .videoOutput || self == .videoOutputMultiplanar }
}

/// `V4L2_MEMORY_*`.
public enum V4L2Memory: UInt32, Sendable {
    case mmap = 1
    case userPointer = 2
    case dmabuf = 4
}

/// `VIDIOC_QUERYCAP`.
public struct V4L2Capability: Hashable, Sendable {
    public var driver: String
    public var card: String
    public var busInfo: String
    /// What the whole device does.
    public var capabilities: V4L2Capabilities
    /// What this node does.
    public var deviceCaps: V4L2Capabilities
    public init(
        driver: String, card: String, busInfo: String, capabilities: V4L2Capabilities, deviceCaps: V4L2Capabilities
    ) {
        (self.driver, self.card, self.busInfo, self.capabilities, self.deviceCaps) = (
            driver, card, busInfo, capabilities, deviceCaps
        )
    }

    /// The video buffer type this node streams (a mem2mem node: its capture side); nil for
    /// nodes without video (metadata, VBI, touch, …).
    public var streamingType: V4L2BufferType? {
        let caps = deviceCaps
        if !caps.isDisjoint(with: [.videoCaptureMultiplanar, .videoMem2MemMultiplanar]) {
            return .videoCaptureMultiplanar
        }
        if !caps.isDisjoint(with: [.videoCapture, .videoMem2Mem]) { return .videoCapture }
        if caps.contains(.videoOutputMultiplanar) { return .videoOutputMultiplanar }
        if caps.contains(.videoOutput) { return .videoOutput }
        return nil
    }

    /// A mem2mem node's second queue, the one it reads from (nil for other nodes).
    public var mem2memOutputType: V4L2BufferType? {
        if deviceCaps.contains(.videoMem2MemMultiplanar) { return .videoOutputMultiplanar }
        if deviceCaps.contains(.videoMem2Mem) { return .videoOutput }
        return nil
    }
}

/// `V4L2_CAP_*`.
public struct V4L2Capabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var videoCapture: V4L2Capabilities { V4L2Capabilities(rawValue: 0x1) }
    @inlinable public static var videoOutput: V4L2Capabilities { V4L2Capabilities(rawValue: 0x2) }
    @inlinable public static var videoCaptureMultiplanar: V4L2Capabilities { V4L2Capabilities(rawValue: 0x1000) }
    @inlinable public static var videoOutputMultiplanar: V4L2Capabilities { V4L2Capabilities(rawValue: 0x2000) }
    @inlinable public static var videoMem2MemMultiplanar: V4L2Capabilities { V4L2Capabilities(rawValue: 0x4000) }
    @inlinable public static var videoMem2Mem: V4L2Capabilities { V4L2Capabilities(rawValue: 0x8000) }
    @inlinable public static var streaming: V4L2Capabilities { V4L2Capabilities(rawValue: 0x0400_0000) }
}

/// `V4L2_BUF_FLAG_*` of a buffer.
public struct V4L2BufferFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var mapped: V4L2BufferFlags { V4L2BufferFlags(rawValue: 0x1) }
    @inlinable public static var queued: V4L2BufferFlags { V4L2BufferFlags(rawValue: 0x2) }
    @inlinable public static var done: V4L2BufferFlags { V4L2BufferFlags(rawValue: 0x4) }
    /// The driver filled the buffer but its data is not to be trusted.
    @inlinable public static var error: V4L2BufferFlags { V4L2BufferFlags(rawValue: 0x40) }
    /// The last buffer of a codec's drain (or before a source change): DQBUF after it is EPIPE.
    @inlinable public static var last: V4L2BufferFlags { V4L2BufferFlags(rawValue: 0x0010_0000) }
}

/// `V4L2_BUF_CAP_*`: what a queue supports, as REQBUFS and CREATE_BUFS report it.
public struct V4L2BufferCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static var mmap: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x1) }
    @inlinable public static var userPointer: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x2) }
    @inlinable public static var dmabuf: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x4) }
    @inlinable public static var requests: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x8) }
    /// Buffers stay valid (mapped, exported) after REQBUFS(0) frees the queue.
    @inlinable public static var orphanedBuffers: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x10) }
    @inlinable public static var m2mHoldCaptureBuffer: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x20) }
    @inlinable public static var mmapCacheHints: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x40) }
    /// CREATE_BUFS reports `max_num_buffers` (Linux 6.10).
    @inlinable public static var maxNumBuffers: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x80) }
    /// VIDIOC_REMOVE_BUFS works on this queue (Linux 6.10).
    @inlinable public static var removeBuffers: V4L2BufferCapabilities { V4L2BufferCapabilities(rawValue: 0x100) }
}

/// What `VIDIOC_CREATE_BUFS` made.
public struct V4L2CreatedBuffers: Hashable, Sendable {
    public var index: UInt32
    public var count: UInt32
    public var capabilities: V4L2BufferCapabilities
    /// `max_num_buffers`, when the queue reports it (`.maxNumBuffers`).
    public var maximum: UInt32?
    public init(index: UInt32, count: UInt32, capabilities: V4L2BufferCapabilities, maximum: UInt32?) {
        (self.index, self.count, self.capabilities, self.maximum) = (index, count, capabilities, maximum)
    }
}

/// `v4l2_pix_format(_mplane)`.
public struct V4L2Format: Hashable, Sendable {
    public struct Plane: Hashable, Sendable {
        public var bytesPerLine: UInt32
        public var sizeImage: UInt32
        public init(bytesPerLine: UInt32 = 0, sizeImage: UInt32 = 0) {
            (self.bytesPerLine, self.sizeImage) = (bytesPerLine, sizeImage)
        }
    }
    public var type: V4L2BufferType
    public var width: UInt32
    public var height: UInt32
    public var pixelFormat: V4L2PixelFormat
    public var field: V4L2Field
    public var colorspace: V4L2Colorspace
    public var planes: [Plane]
    public init(
        type: V4L2BufferType, width: UInt32, height: UInt32, pixelFormat: V4L2PixelFormat, field: V4L2Field = .none,
        colorspace: V4L2Colorspace = .default, planes: [Plane] = [Plane()]
    ) {
        (self.type, self.width, self.height, self.pixelFormat) = (type, width, height, pixelFormat)
        (self.field, self.colorspace, self.planes) = (field, colorspace, planes)
    }
}

/// `V4L2_FIELD_*`: how the lines of a frame are ordered (interlacing).
public struct V4L2Field: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The driver chooses.
    @inlinable public static var any: V4L2Field { V4L2Field(rawValue: 0) }
    /// Progressive.
    @inlinable public static var none: V4L2Field { V4L2Field(rawValue: 1) }
}

/// `V4L2_COLORSPACE_*`.
public struct V4L2Colorspace: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The driver chooses.
    public static let `default` = V4L2Colorspace(rawValue: 0)
    @inlinable public static var srgb: V4L2Colorspace { V4L2Colorspace(rawValue: 8) }
}

/// A V4L2 pixel format (`V4L2_PIX_FMT_*`), by fourcc; any code passes through `rawValue`.
public struct V4L2PixelFormat: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let rgb24 = V4L2PixelFormat(rawValue: 0x3342_4752)  // 'RGB3'
    public static let bgr24 = V4L2PixelFormat(rawValue: 0x3352_4742)  // 'BGR3'
    public static let yuyv = V4L2PixelFormat(rawValue: 0x5659_5559)  // 'YUYV'
    /// 'NV12': Y plane, then interleaved CbCr, in one buffer.
    @inlinable public static var nv12: V4L2PixelFormat { V4L2PixelFormat(rawValue: 0x3231_564e) }
    /// 'NM12': the same in two buffers.
    @inlinable public static var nv12m: V4L2PixelFormat { V4L2PixelFormat(rawValue: 0x3231_4d4e) }
    /// 'XR24' (`V4L2_PIX_FMT_XBGR32`): B, G, R, X in memory, the bytes of DRM's XRGB8888.
    @inlinable public static var xbgr32: V4L2PixelFormat { V4L2PixelFormat(rawValue: 0x3432_5258) }
    /// 'FWHT': vicodec's compressed frames (a header, then the fast Walsh-Hadamard transform's coefficients).
    @inlinable public static var fwht: V4L2PixelFormat { V4L2PixelFormat(rawValue: 0x5448_5746) }
    /// 'RGBP' (`V4L2_PIX_FMT_RGB565`): the bytes of DRM's RGB565.
    @inlinable public static var rgb565: V4L2PixelFormat { V4L2PixelFormat(rawValue: 0x5042_4752) }
    public var description: String { FourCC.name(rawValue) }
}

/// One plane of a `v4l2_buffer`.
public struct V4L2Plane: Hashable, Sendable {
    public var bytesUsed: UInt32
    public var length: UInt32
    public var dataOffset: UInt32
    /// MMAP: the offset to mmap the plane at.
    public var memoryOffset: UInt32
    /// DMABUF: the dma-buf fd (-1 otherwise).
    public var fd: Int32
    public init(
        bytesUsed: UInt32 = 0, length: UInt32 = 0, dataOffset: UInt32 = 0, memoryOffset: UInt32 = 0, fd: Int32 = -1
    ) {
        (self.bytesUsed, self.length, self.dataOffset, self.memoryOffset, self.fd) = (
            bytesUsed, length, dataOffset, memoryOffset, fd
        )
    }
}

/// `struct v4l2_buffer`, flattened.
public struct V4L2BufferInfo: Hashable, Sendable {
    public var index: UInt32
    public var type: V4L2BufferType
    public var memory: V4L2Memory
    public var flags: V4L2BufferFlags
    public var field: V4L2Field
    public var sequence: UInt32
    public var timestamp: Duration
    /// Kept as the first plane and the others, so that a single-planar buffer, queued and
    /// dequeued every frame, needs no allocation.
    public private(set) var planeCount: Int
    private var firstPlane: V4L2Plane
    private var otherPlanes: [V4L2Plane]

    public init(
        index: UInt32, type: V4L2BufferType, memory: V4L2Memory, flags: V4L2BufferFlags = [], field: V4L2Field = .any,
        sequence: UInt32 = 0, timestamp: Duration = .zero, planes: [V4L2Plane]
    ) {
        self.init(
            index: index, type: type, memory: memory, flags: flags, field: field, sequence: sequence,
            timestamp: timestamp,
            planeCount: planes.count
        ) { planes[$0] }
    }

    /// A buffer whose `planeCount` planes are given one by one.
    public init(
        index: UInt32, type: V4L2BufferType, memory: V4L2Memory, flags: V4L2BufferFlags = [], field: V4L2Field = .any,
        sequence: UInt32 = 0, timestamp: Duration = .zero,
        planeCount: Int, plane: (Int) -> V4L2Plane
    ) {
        (self.index, self.type, self.memory, self.flags, self.field) = (index, type, memory, flags, field)
        (self.sequence, self.timestamp, self.planeCount) = (sequence, timestamp, planeCount)
        firstPlane = planeCount > 0 ? plane(0) : V4L2Plane()
        otherPlanes = planeCount > 1 ? (1..<planeCount).map(plane) : []
    }

    /// Plane `number` (< `planeCount`), without making the `planes` array.
    public func plane(_ number: Int) -> V4L2Plane { number == 0 ? firstPlane : otherPlanes[number - 1] }

    public var planes: [V4L2Plane] {
        get { planeCount == 0 ? [] : [firstPlane] + otherPlanes }
        set {
            self = V4L2BufferInfo(
                index: index, type: type, memory: memory, flags: flags, field: field, sequence: sequence,
                timestamp: timestamp, planes: newValue)
        }
    }
}

/// A time per frame (`v4l2_fract`): 1/30 is 30 frames per second.
public struct V4L2Fraction: Hashable, Sendable, CustomStringConvertible {
    public var numerator: UInt32
    public var denominator: UInt32
    public init(_ numerator: UInt32, _ denominator: UInt32) {
        (self.numerator, self.denominator) = (numerator, denominator)
    }
    public var description: String { "\(numerator)/\(denominator)" }
    /// Frames per second at this time per frame.
    public var framesPerSecond: Double { numerator == 0 ? 0 : Double(denominator) / Double(numerator) }
}

/// `VIDIOC_ENUM_FRAMESIZES`: one size, or a range (continuous is a range with step 1).
public enum V4L2FrameSize: Hashable, Sendable {
    case discrete(width: UInt32, height: UInt32)
    case stepwise(width: ClosedRange<UInt32>, widthStep: UInt32, height: ClosedRange<UInt32>, heightStep: UInt32)
}

/// `VIDIOC_ENUM_FRAMEINTERVALS`: one time per frame, or a range of them.
public enum V4L2FrameInterval: Hashable, Sendable {
    case discrete(V4L2Fraction)
    case stepwise(min: V4L2Fraction, max: V4L2Fraction, step: V4L2Fraction)
}

public protocol V4L2Interface {
    func v4l2QueryCapability(_ fd: FileDescriptorNumber) throws(KernelError) -> V4L2Capability
    /// `VIDIOC_ENUM_FMT` at `index`; EINVAL past the last one.
    func v4l2EnumFormat(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32
    ) throws(KernelError) -> V4L2PixelFormat
    func v4l2GetFormat(_ fd: FileDescriptorNumber, type: V4L2BufferType) throws(KernelError) -> V4L2Format
    /// `VIDIOC_S_FMT`, or `VIDIOC_TRY_FMT` when `tryOnly`; returns what the driver made of it.
    func v4l2SetFormat(
        _ fd: FileDescriptorNumber, _ format: V4L2Format, tryOnly: Bool
    ) throws(KernelError) -> V4L2Format
    /// `VIDIOC_REQBUFS`: the count granted and the queue's `V4L2_BUF_CAP_*`.
    func v4l2RequestBuffers(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, count: UInt32
    )
        throws(KernelError) -> (count: UInt32, capabilities: V4L2BufferCapabilities)
    /// `VIDIOC_CREATE_BUFS`: up to `count` more buffers sized for `format` (its type is the
    /// queue's); the first new index, how many were made, the queue's `V4L2_BUF_CAP_*` and,
    /// where it reports `.maxNumBuffers` (Linux 6.10), the most buffers it can hold.
    func v4l2CreateBuffers(
        _ fd: FileDescriptorNumber, memory: V4L2Memory, format: V4L2Format, count: UInt32
    )
        throws(KernelError) -> V4L2CreatedBuffers
    /// `VIDIOC_REMOVE_BUFS` (Linux 6.10): frees `count` dequeued buffers from `index` on, leaving
    /// the other indices as they are. ENOTTY on kernels without it.
    func v4l2RemoveBuffers(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, count: UInt32
    ) throws(KernelError)
    /// `VIDIOC_ENUM_FRAMESIZES` at `index`; EINVAL past the last one.
    func v4l2EnumFrameSize(
        _ fd: FileDescriptorNumber, pixelFormat: V4L2PixelFormat, index: UInt32
    ) throws(KernelError) -> V4L2FrameSize
    /// `VIDIOC_ENUM_FRAMEINTERVALS` at `index` for a format and size; EINVAL past the last one.
    func v4l2EnumFrameInterval(
        _ fd: FileDescriptorNumber, pixelFormat: V4L2PixelFormat, width: UInt32, height: UInt32, index: UInt32
    )
        throws(KernelError) -> V4L2FrameInterval
    /// `VIDIOC_G_PARM`: the time per frame.
    func v4l2GetFrameInterval(_ fd: FileDescriptorNumber, type: V4L2BufferType) throws(KernelError) -> V4L2Fraction
    /// `VIDIOC_S_PARM`: asks for a time per frame; returns the one the driver chose.
    func v4l2SetFrameInterval(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, _ interval: V4L2Fraction
    ) throws(KernelError) -> V4L2Fraction
    func v4l2QueryBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, index: UInt32, planes: Int
    )
        throws(KernelError) -> V4L2BufferInfo
    func v4l2QueueBuffer(_ fd: FileDescriptorNumber, _ buffer: V4L2BufferInfo) throws(KernelError) -> V4L2BufferInfo
    /// `VIDIOC_DQBUF`; nil when the fd is non-blocking and nothing is ready (EAGAIN is a result).
    func v4l2DequeueBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, memory: V4L2Memory, planes: Int
    )
        throws(KernelError) -> V4L2BufferInfo?
    func v4l2ExportBuffer(
        _ fd: FileDescriptorNumber, type: V4L2BufferType, index: UInt32, plane: UInt32, flags: OpenFlags
    )
        throws(KernelError) -> FileDescriptorNumber
    func v4l2Stream(_ fd: FileDescriptorNumber, type: V4L2BufferType, on: Bool) throws(KernelError)
    func v4l2SetControl(_ fd: FileDescriptorNumber, id: V4L2ControlID, value: Int32) throws(KernelError)
    func v4l2GetControl(_ fd: FileDescriptorNumber, id: V4L2ControlID) throws(KernelError) -> Int32
}

extension KernelPaths {
    /// One folder per video node, with its `name`.
    public static let videoSysfsDirectory = "/sys/class/video4linux"
}
