/// The simulated video nodes: a vivid-like single-planar capture (`vivid-000-vid-cap`) and
/// output (`vivid-000-vid-out`) with vb2's queue state machine. The capture draws vivid's 75%
/// colour bars in RGB24; frames are produced when a queued buffer is dequeued while streaming.

final class SimulatedVideoBuffer {
    enum State { case dequeued, queued }
    var state = State.dequeued
    /// MMAP: the buffer's own memory (a host memfd).
    var memory: FileDescriptorNumber?
    /// DMABUF: the queued dma-buf's pieces (dups held while queued).
    var imported: [SimulatedSegment] = []
    /// DMABUF: the fd it was last queued with (vb2 reports it back at DQBUF and QUERYBUF).
    var dmaBufFD: Int32 = -1
    var bytesUsed: UInt32 = 0
    var queuedAt = 0
}

final class SimulatedVideoDevice {
    let name: String
    let isOutput: Bool
    var type: V4L2BufferType { isOutput ? .videoOutput : .videoCapture }
    var width: UInt32 = 640
    var height: UInt32 = 360
    var bytesPerLine: UInt32 { width * 3 }
    var sizeImage: UInt32 { bytesPerLine * height }
    var memory: V4L2Memory?
    var buffers: [SimulatedVideoBuffer] = []
    var owner: ObjectIdentifier?
    var streaming = false
    var sequence: UInt32 = 0
    var queueCounter = 0
    var startStreamingError = false
    var dequeueError = false
    var controls: [UInt32: Int32] = [:]

    static let rgb24: UInt32 = 0x3342_4752
    /// vivid's webcam input sizes.
    static let sizes: [(UInt32, UInt32)] = [(320, 180), (640, 360), (640, 480), (1280, 720), (1920, 1080)]
    /// vb2 queue flags vivid sets: min_buffers_needed 2.
    static let minimumBuffers = 2
    /// V4L2_BUF_CAP_SUPPORTS_MMAP | USERPTR | DMABUF | ORPHANED_BUFS.
    static let queueCapabilities: UInt32 = 0x1 | 0x2 | 0x4 | 0x10

    init(name: String, isOutput: Bool) { (self.name, self.isOutput) = (name, isOutput) }

    var capability: V4L2Capability {
        let caps = (isOutput ? V4L2Capability.videoOutput : V4L2Capability.videoCapture) | V4L2Capability.streaming
        return V4L2Capability(driver: "vivid", card: "vivid", busInfo: "platform:vivid-000", capabilities: caps | 0x8000_0000, deviceCaps: caps)
    }

    var format: V4L2Format {
        V4L2Format(type: type, width: width, height: height, pixelFormat: Self.rgb24, field: 1, colorspace: 8,
                   planes: [V4L2Format.Plane(bytesPerLine: bytesPerLine, sizeImage: sizeImage)])
    }

    /// vivid's 75% colour bars (tpg "75% Colorbar"): white, yellow, cyan, green, magenta, red,
    /// blue, black, in RGB24.
    func drawPicture(into view: UnsafeMutableRawBufferPointer) {
        let bars: [(UInt8, UInt8, UInt8)] = [
            (0xbf, 0xbf, 0xbf), (0xbf, 0xbf, 0x00), (0x00, 0xbf, 0xbf), (0x00, 0xbf, 0x00),
            (0xbf, 0x00, 0xbf), (0xbf, 0x00, 0x00), (0x00, 0x00, 0xbf), (0x00, 0x00, 0x00),
        ]
        let row = (0..<Int(width)).flatMap { x -> [UInt8] in
            let bar = bars[x * bars.count / Int(width)]
            return [bar.0, bar.1, bar.2]
        }
        for y in 0..<Int(height) where (y + 1) * Int(bytesPerLine) <= view.count {
            row.withUnsafeBytes { view.baseAddress!.advanced(by: y * Int(bytesPerLine)).copyMemory(from: $0.baseAddress!, byteCount: row.count) }
        }
    }
}
