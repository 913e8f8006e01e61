import DmaBufKernel
import Foundation

/// The simulated video nodes: vivid-like capture and output nodes (single- and multi-planar
/// instances) and a vim2m-like mem2mem node, each queue with vb2's state machine. Capture
/// frames are vivid's 75% colour bars, drawn when a queued buffer is dequeued while streaming;
/// vim2m copies its source into its destination, flipped as its controls say.

/// A pixel format the simulation draws: per memory plane, bytes per pixel and vertical
/// subsampling.
struct SimulatedPixelFormat: Equatable {
    let fourcc: V4L2PixelFormat
    let planes: [(bytesPerPixel: UInt32, verticalDivisor: UInt32)]
    /// Bytes beyond the picture (a compressed frame's header).
    var header: UInt32 = 0

    static let rgb24 = SimulatedPixelFormat(fourcc: .rgb24, planes: [(3, 1)])
    static let yuyv = SimulatedPixelFormat(fourcc: .yuyv, planes: [(2, 1)])
    static let nv12m = SimulatedPixelFormat(fourcc: .nv12m, planes: [(1, 1), (1, 2)])  // Y, then CbCr
    static let xbgr32 = SimulatedPixelFormat(fourcc: .xbgr32, planes: [(4, 1)])  // B, G, R, 0 (DRM's XRGB8888)
    static let rgb565 = SimulatedPixelFormat(fourcc: .rgb565, planes: [(2, 1)])  // rrrrrggg gggbbbbb, little-endian (DRM's RGB565)
    static let bgr24 = SimulatedPixelFormat(fourcc: .bgr24, planes: [(3, 1)])
    /// vicodec's compressed frames: room for 4 bytes a pixel and the header (pixfmt_fwht's
    /// sizeimage_mult, vidioc_try_fmt), though a frame uses far less.
    static let fwht = SimulatedPixelFormat(
        fourcc: .fwht, planes: [(4, 1)], header: UInt32(SimulatedVicodec.headerSize))

    static func == (a: Self, b: Self) -> Bool { a.fourcc == b.fourcc }

    func planeFormats(width: UInt32, height: UInt32) -> [V4L2Format.Plane] {
        planes.map {
            V4L2Format.Plane(
                bytesPerLine: width * $0.bytesPerPixel,
                sizeImage: width * $0.bytesPerPixel * height / $0.verticalDivisor + header)
        }
    }
}

final class SimulatedVideoPlane {
    /// The size vb2 allocated (MMAP) or needs at least (DMABUF).
    let length: UInt32
    /// MMAP: where userspace maps it (vb2 __setup_offsets) and its memory (a host memfd).
    var memoryOffset: UInt32 = 0
    var memory: FileDescriptorNumber?
    /// DMABUF: the queued dma-buf's pieces (dups held while queued) and its fd, which vb2
    /// reports back at DQBUF and QUERYBUF.
    var imported: [SimulatedSegment] = []
    var dmaBufFD: Int32 = -1
    var bytesUsed: UInt32 = 0
    var dataOffset: UInt32 = 0
    init(length: UInt32) { self.length = length }

    /// The memory the driver reads or writes.
    func segments(pageSize: Int) -> [SimulatedSegment] {
        guard let memory else { return imported }
        let page = UInt64(pageSize)
        return [SimulatedSegment(memfd: memory, offset: 0, size: (UInt64(length) + page - 1) / page * page)]
    }
}

final class SimulatedVideoBuffer {
    enum State { case dequeued, queued, done }
    var state = State.dequeued
    var planes: [SimulatedVideoPlane]
    var queuedAt = 0
    var sequence: UInt32 = 0
    var timestamp = Duration.zero
    var error = false
    /// V4L2_BUF_FLAG_LAST: a codec's last buffer of a drain or before a source change.
    var last = false
    /// Filled by the capture thread; its picture is drawn when it is dequeued.
    var awaitsPicture = false
    /// The looped output frame it was filled with (per plane), drawn instead of the pattern.
    var loopedPicture: [[UInt8]]?
    init(planes: [SimulatedVideoPlane]) { self.planes = planes }
}

/// One vb2 queue: its format, buffers and streaming state.
final class SimulatedVideoQueue {
    let type: V4L2BufferType
    var pixelFormat: SimulatedPixelFormat
    var width: UInt32
    var height: UInt32
    var memory: V4L2Memory?
    /// Buffers by index; REMOVE_BUFS (6.12) leaves holes.
    var slots: [SimulatedVideoBuffer?] = []
    /// Every buffer the queue holds, in index order.
    var buffers: [SimulatedVideoBuffer] { slots.compactMap { $0 } }
    func buffer(_ index: Int) -> SimulatedVideoBuffer? { slots.indices.contains(index) ? slots[index] : nil }
    func index(of buffer: SimulatedVideoBuffer) -> Int? { slots.firstIndex { $0 === buffer } }
    /// The first index of `count` free slots in a row (vb2 __vb2_queue_alloc's
    /// bitmap_find_next_zero_area), possibly past the end.
    func firstFree(_ count: Int) -> Int {
        var start = 0
        while start < slots.count {
            let end = min(start + count, slots.count)
            if let taken = slots[start..<end].lastIndex(where: { $0 != nil }) {
                start = taken + 1
            } else {
                return start
            }
        }
        return start
    }
    var owner: ObjectIdentifier?
    var streaming = false
    /// vb2's start_streaming_called: latched once enough buffers are queued while streaming.
    var started = false
    var sequence: UInt32 = 0
    /// Periods the capture thread will have slept through at its next tick.
    var lateWake: UInt32 = 0
    var queueCounter = 0
    /// vb2's min_buffers_needed: STREAMON waits for this many queued buffers.
    let minimumBuffers: Int

    init(type: V4L2BufferType, pixelFormat: SimulatedPixelFormat, width: UInt32, height: UInt32, minimumBuffers: Int) {
        (self.type, self.pixelFormat, self.width, self.height, self.minimumBuffers) = (
            type, pixelFormat, width, height, minimumBuffers
        )
    }

    var planeFormats: [V4L2Format.Plane] { pixelFormat.planeFormats(width: width, height: height) }
    var format: V4L2Format {
        V4L2Format(
            type: type, width: width, height: height, pixelFormat: pixelFormat.fourcc, field: .none, colorspace: .srgb,
            planes: planeFormats)
    }
    /// The driver has started: STREAMON, then at least `minimumBuffers` queued.
    var running: Bool { streaming && started }

    /// vb2_start_streaming runs once streaming with enough buffers queued.
    func startIfReady() {
        if streaming && !started && buffers.count(where: { $0.state == .queued }) >= minimumBuffers { started = true }
    }

    /// The oldest buffer in `state`.
    func oldest(_ state: SimulatedVideoBuffer.State) -> SimulatedVideoBuffer? {
        buffers.filter { $0.state == state }.min { $0.queuedAt < $1.queuedAt }
    }
}

/// The queues of one open of a mem2mem node, or the shared queue of a vivid node, with the
/// controls that belong to them.
final class SimulatedVideoContext {
    let queues: [SimulatedVideoQueue]
    var controls: [V4L2ControlID: Int32] = [:]
    /// A vicodec open: which side, and its drain and event state.
    let codecRole: V4L2CodecRole?
    let codec: SimulatedVicodec.State?
    init(queues: [SimulatedVideoQueue], codecRole: V4L2CodecRole? = nil) {
        self.queues = queues
        self.codecRole = codecRole
        codec = codecRole.map { _ in SimulatedVicodec.State() }
    }
    func queue(_ type: V4L2BufferType) -> SimulatedVideoQueue? { queues.first { $0.type == type } }
}

final class SimulatedVideoDevice {
    enum Role { case capture, output, mem2mem }
    /// vb2's memory ops: vivid's `allocators` parameter (0 vmalloc, 1 dma-contig).
    enum Allocator { case vmalloc, dmaContig }
    let name: String
    let role: Role
    let multiplanar: Bool
    let allocator: Allocator
    let formats: [SimulatedPixelFormat]
    /// vicodec's stateful encoder or decoder (a mem2mem node); nil for vim2m.
    let codec: V4L2CodecRole?
    /// vivid: every open shares one context. vim2m: each open gets its own.
    let shared: SimulatedVideoContext?
    /// vivid starts at 640x360, 1/5 s per frame (webcam_ival_idx 3).
    var timePerFrame = V4L2Fraction(1, 5)
    var startStreamingError = false
    var dequeueError = false
    /// vivid's disconnect control: ioctls fail with ENODEV until the last user closes.
    var disconnected = false
    /// vivid: the input (capture) or output in use, an index into `SimulatedVivid.inputs`/`outputs`.
    var connector: UInt32 = 0
    var users = 0

    /// V4L2_BUF_CAP_SUPPORTS_MMAP | USERPTR | DMABUF | ORPHANED_BUFS.
    static let queueCapabilities: V4L2BufferCapabilities = [.mmap, .userPointer, .dmabuf, .orphanedBuffers]

    init(
        name: String, role: Role, multiplanar: Bool = false, allocator: Allocator = .vmalloc,
        codec: V4L2CodecRole? = nil
    ) {
        (self.name, self.role, self.multiplanar, self.allocator, self.codec) = (
            name, role, multiplanar, allocator, codec
        )
        formats =
            codec != nil
            ? [.bgr24, .rgb24, .xbgr32, .fwht]
            : role == .mem2mem
                ? [.rgb24, .rgb565] : (multiplanar ? [.yuyv, .rgb24, .xbgr32, .nv12m] : [.yuyv, .rgb24, .xbgr32])
        shared =
            role == .mem2mem
            ? nil : SimulatedVideoContext(queues: Self.makeQueues(role: role, multiplanar: multiplanar))
    }

    var driver: String { codec != nil ? "vicodec" : role == .mem2mem ? "vim2m" : "vivid" }

    /// The formats a queue of `type` takes: a codec's compressed side FWHT only, its raw side the rest.
    func formats(for type: V4L2BufferType) -> [SimulatedPixelFormat] {
        guard let codec else { return formats }
        let compressed = (codec == .encoder) != type.isOutput
        return formats.filter { ($0 == .fwht) == compressed }
    }

    static func makeQueues(role: Role, multiplanar: Bool) -> [SimulatedVideoQueue] {
        let types: [V4L2BufferType] =
            switch role {
            case .capture: [multiplanar ? .videoCaptureMultiplanar : .videoCapture]
            case .output: [multiplanar ? .videoOutputMultiplanar : .videoOutput]
            case .mem2mem: [.videoOutput, .videoCapture]
            }
        return types.map { type in
            role == .output
                ? SimulatedVideoQueue(
                    type: type, pixelFormat: .yuyv, width: outputSize.0, height: outputSize.1, minimumBuffers: 2)
                : role == .mem2mem
                    ? SimulatedVideoQueue(type: type, pixelFormat: .rgb24, width: 640, height: 480, minimumBuffers: 0)
                    : SimulatedVideoQueue(type: type, pixelFormat: .yuyv, width: 640, height: 360, minimumBuffers: 2)
        }
    }

    func newContext() -> SimulatedVideoContext {
        if let shared { return shared }
        let queues = Self.makeQueues(role: role, multiplanar: multiplanar)
        if codec != nil {
            // vicodec starts at 1280x720 (vicodec_open).
            for queue in queues {
                (queue.pixelFormat, queue.width, queue.height) = (formats(for: queue.type)[0], 1280, 720)
            }
        }
        return SimulatedVideoContext(queues: queues, codecRole: codec)
    }

    var capability: V4L2Capability {
        let caps: V4L2Capabilities =
            switch (role, multiplanar) {
            case (.capture, false): .videoCapture
            case (.capture, true): .videoCaptureMultiplanar
            case (.output, false): .videoOutput
            case (.output, true): .videoOutputMultiplanar
            case (.mem2mem, _): .videoMem2Mem
            }
        let bus = role == .mem2mem ? "platform:\(driver)" : "platform:\(name.prefix(9))"
        return V4L2Capability(
            driver: driver, card: driver, busInfo: bus,
            capabilities: caps.union([.streaming, V4L2Capabilities(rawValue: 0x8000_0000)]),
            deviceCaps: caps.union(.streaming))
    }

    /// vivid's output starts on S-Video with a PAL standard (720x576); with its crop, compose
    /// and scaler it takes any size within vivid_min_rect and vivid_max_rect (16x16 to
    /// 16384x9216; vivid_try_fmt_vid_out).
    static let outputSize: (UInt32, UInt32) = (720, 576)

    /// The size the driver settles on for a request: vivid's nearest webcam size (capture) or
    /// its standard's (output), vim2m's clamped and aligned one.
    func nearestSize(width: UInt32, height: UInt32) -> (UInt32, UInt32) {
        if codec != nil {
            return (
                min(max(width, SimulatedVicodec.widths.lowerBound), SimulatedVicodec.widths.upperBound),
                min(max(height, SimulatedVicodec.heights.lowerBound), SimulatedVicodec.heights.upperBound)
            )
        }
        if role == .mem2mem { return (min(max(width, 32), 640) & ~1, min(max(height, 32), 480)) }
        if role == .output { return (min(max(width, 16), 16384) & ~1, min(max(height, 16), 9216)) }
        return SimulatedVivid.webcamSizes.min {
            abs(Int($0.0) - Int(width)) + abs(Int($0.1) - Int(height)) < abs(Int($1.0) - Int(width))
                + abs(Int($1.1) - Int(height))
        }!
    }

}
