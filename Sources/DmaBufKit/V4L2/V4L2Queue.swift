import DmaBufKernel

/// A buffer of a V4L2 queue, by its index.
public struct BufferIndex: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "buffer \(rawValue)" }
}

/// One queue of a video node (capture or output) with its buffers: created by REQBUFS, so no
/// buffer can be queued before buffers exist; released with STREAMOFF and REQBUFS(0). The queue
/// holds its own descriptor of the node's open file (a dup: the same file, so the same vb2
/// owner), so it never issues an ioctl on a number the device's owner has closed and another
/// file may since have taken; the file stays open until both are gone.
public struct V4L2Queue: ~Copyable {
    private let descriptor: OwnedDescriptor
    public var kernel: any Kernel { descriptor.kernel }
    public var fd: FileDescriptorNumber { descriptor.fd }
    public let path: String
    public let type: V4L2BufferType
    public let memory: V4L2Memory
    /// The buffers the queue holds, by index: 0..<n after REQBUFS; CREATE_BUFS adds, and
    /// REMOVE_BUFS takes out, so after a removal they need not be contiguous.
    public private(set) var indices: [BufferIndex]
    public var count: Int { indices.count }
    /// The most buffers the queue can hold, once CREATE_BUFS reported it (Linux 6.10).
    public private(set) var maximumBuffers: Int?
    /// Planes per buffer (1 for single-planar types).
    public let planeCount: Int
    /// What the queue supports (`V4L2_BUF_CAP_*`).
    public let capabilities: V4L2BufferCapabilities
    private var released = false

    public init(device: borrowing V4L2Device, type: V4L2BufferType, memory: V4L2Memory, count: Int) throws(KernelError)
    {
        let asked: UInt32 = try checkedArgument(count, "count", operation: "VIDIOC_REQBUFS", path: device.path)
        let format = try device.format(type)
        let number = try device.descriptor.perform { kernel, fd throws(KernelError) in try kernel.duplicate(fd) }
        let own = OwnedDescriptor(number, kernel: device.kernel, path: device.path)
        let granted: (count: UInt32, capabilities: V4L2BufferCapabilities)
        do {
            granted = try own.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2RequestBuffers(fd, type: type, memory: memory, count: asked)
            }
        } catch {
            throw error.explained(
                error.errno == .EBUSY ? "the node is busy: another open of it owns its buffers or is streaming" : nil)
        }
        descriptor = own
        path = device.path
        (self.type, self.memory, self.indices, self.capabilities) = (
            type, memory, (0..<granted.count).map(BufferIndex.init(rawValue:)), granted.capabilities
        )
        planeCount = type.isMultiplanar ? format.planes.count : 1
    }

    /// CREATE_BUFS: up to `count` more buffers, each plane as large as `format` says (at least
    /// what the current format needs); the indices of the new buffers.
    public mutating func createBuffers(_ count: Int, format: V4L2Format) throws(KernelError) -> [BufferIndex] {
        var asked = format
        asked.type = type
        let number: UInt32 = try checkedArgument(count, "count", operation: "VIDIOC_CREATE_BUFS", path: path)
        let made = try run { () throws(KernelError) in
            try kernel.v4l2CreateBuffers(fd, memory: memory, format: asked, count: number)
        }
        let added = (made.index..<(made.index + made.count)).map { BufferIndex(rawValue: $0) }
        indices = (indices + added).sorted { $0.rawValue < $1.rawValue }
        if let maximum = made.maximum { maximumBuffers = Int(maximum) }
        return added
    }

    /// REMOVE_BUFS (Linux 6.10): frees `count` buffers from `index` on; each must exist and
    /// be dequeued (EINVAL, EBUSY). ENOTTY where the kernel has no such ioctl; the queue's
    /// `.removeBuffers` capability says beforehand.
    public mutating func removeBuffers(from index: BufferIndex, count: Int) throws(KernelError) {
        let number: UInt32 = try checkedArgument(count, "count", operation: "VIDIOC_REMOVE_BUFS", path: path)
        try run { () throws(KernelError) in
            try kernel.v4l2RemoveBuffers(fd, type: type, index: index.rawValue, count: number)
        }
        let removed = index.rawValue..<(index.rawValue + number)
        indices.removeAll { removed.contains($0.rawValue) }
    }

    private func run<T>(_ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        do { return try body() } catch { throw error.at(path) }
    }

    public func info(_ index: BufferIndex) throws(KernelError) -> V4L2BufferInfo {
        try run { () throws(KernelError) in
            try kernel.v4l2QueryBuffer(fd, type: type, memory: memory, index: index.rawValue, planes: planeCount)
        }
    }

    /// EXPBUF: a dma-buf of one plane of an MMAP buffer (close-on-exec, read-write).
    public func export(_ index: BufferIndex, plane: Int = 0) throws(KernelError) -> DmaBuf {
        _ = try checkedArgument(
            plane, "plane", as: UInt32.self, in: 0...(planeCount - 1), operation: "VIDIOC_EXPBUF", path: path)
        let length = Int(try info(index).plane(plane).length)
        let exported = try run { () throws(KernelError) in
            try kernel.v4l2ExportBuffer(
                fd, type: type, index: index.rawValue, plane: UInt32(plane), flags: [.closeOnExec, .readWrite])
        }
        return DmaBuf(
            OwnedDescriptor(exported, kernel: kernel, path: "EXPBUF of \(index) plane \(plane) of \(path)"),
            length: length)
    }

    /// QBUF. For DMABUF queues, `dmaBufs` gives each plane's dma-buf; `bytesUsed` each plane's
    /// payload (output queues) and `dataOffsets` where in it the picture starts (multi-planar
    /// output queues; the payload counts the offset). A multi-planar DMABUF output plane also
    /// says how long it is (vb2's __verify_length refuses a payload longer than the given
    /// length, 0 when unset): the payload's size is sent as that length.
    @discardableResult
    /// `lengths` (DMABUF): the bytes of each dma-buf the driver may use, and must map; by
    /// default a capture plane's whole dma-buf, an output plane's `bytesUsed`.
    public func enqueue(
        _ index: BufferIndex, dmaBufs: [FileDescriptorNumber] = [], bytesUsed: [UInt32] = [],
        dataOffsets: [UInt32] = [], lengths: [UInt32] = []
    )
        throws(KernelError) -> V4L2BufferInfo
    {
        let memory = memory
        let request = V4L2BufferInfo(index: index.rawValue, type: type, memory: memory, planeCount: planeCount) {
            plane in
            let used = plane < bytesUsed.count ? bytesUsed[plane] : 0
            return V4L2Plane(
                bytesUsed: used, length: memory == .dmabuf ? (plane < lengths.count ? lengths[plane] : used) : 0,
                dataOffset: plane < dataOffsets.count ? dataOffsets[plane] : 0,
                fd: plane < dmaBufs.count ? dmaBufs[plane].rawValue : -1)
        }
        do {
            return try kernel.v4l2QueueBuffer(fd, request)
        } catch {
            throw error.at(path).explained(
                error.errno == .EFAULT && memory == .dmabuf
                    ? "the driver could not map the dma-buf: a vb2-vmalloc driver (vivid, vim2m, …) maps it with the exporter's vmap (udmabuf has one from Linux 6.2), a vb2-dma-contig driver needs it physically contiguous"
                    : nil)
        }
    }

    /// DQBUF: nil when nothing is ready on a non-blocking device.
    public func dequeue() throws(KernelError) -> V4L2BufferInfo? {
        try run { () throws(KernelError) in
            try kernel.v4l2DequeueBuffer(fd, type: type, memory: memory, planes: planeCount)
        }
    }

    /// Waits (poll) up to `timeout` for a buffer and dequeues it; nil on timeout. When poll
    /// reports an error (not streaming, device gone), DQBUF says which.
    public func dequeue(waiting timeout: Duration) throws(KernelError) -> V4L2BufferInfo? {
        let events: PollEvents = type.isOutput ? .writable : .readable
        let ready = try run { () throws(KernelError) in
            try kernel.poll(fd, events: events, timeoutMilliseconds: timeout.pollMilliseconds)
        }
        return ready.isDisjoint(with: events.union([.error, .hangUp])) ? nil : try dequeue()
    }

    public func start() throws(KernelError) {
        try run { () throws(KernelError) in try kernel.v4l2Stream(fd, type: type, on: true) }
    }
    public func stop() throws(KernelError) {
        try run { () throws(KernelError) in try kernel.v4l2Stream(fd, type: type, on: false) }
    }

    /// STREAMOFF (returns every buffer) and REQBUFS(0). EBUSY while exported dma-bufs or
    /// mappings of the buffers are alive, unless the queue supports orphaned buffers. ENODEV
    /// when the device went away: closing the node then frees the buffers.
    public consuming func release() throws(KernelError) {
        released = true
        do {
            try kernel.v4l2Stream(fd, type: type, on: false)
            _ = try kernel.v4l2RequestBuffers(fd, type: type, memory: memory, count: 0)
        } catch {
            let reason: String? =
                switch error.errno {
                case .EBUSY: "buffers are still mapped or exported; close those first (this queue cannot orphan them)"
                case .ENODEV: "the device is gone (disconnected); closing the node frees its buffers"
                default: nil
                }
            throw error.at(path).explained(reason)
        }
    }

    deinit {
        if !released {
            try? kernel.v4l2Stream(fd, type: type, on: false)
            _ = try? kernel.v4l2RequestBuffers(fd, type: type, memory: memory, count: 0)
        }
    }
}

@available(
    *, unavailable, message: "a V4L2 queue's buffers move through states one caller orders: drive it from one thread"
)
extension V4L2Queue: Sendable {}
