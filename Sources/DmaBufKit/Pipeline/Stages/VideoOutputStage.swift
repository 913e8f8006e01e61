import DmaBufKernel

/// A V4L2 output queue (DMABUF) as a sink: each frame's dma-buf is queued, and the frame
/// released when DQBUF gives its buffer back. Like a display, an output keeps its last frame on
/// show until another comes (vivid gives a buffer back only while one more is pending), so the
/// stage is finished with every frame taken and at most one still out; STREAMOFF returns it.
final class VideoOutputStage: Stage, FrameConsumer, FrameArrivals, Metered {
    let name: String
    let queue: OwnedQueue
    let bytesUsed: UInt32
    /// Frames it will be given.
    let frames: Int
    /// The most frames it holds at once: a capture source must keep buffers to fill however
    /// slowly the node gives them back.
    let maximumInFlight: Int
    /// How long the node held each frame it gave back, since the last `takeLatencies`.
    private var returns: [Duration] = []
    private var inFlight: [UInt32: (frame: Frame, queuedAt: Duration)] = [:]
    private(set) var taken = 0
    private(set) var erroneous = 0
    private var streaming = false
    let meter: StageMeter

    init(name: String, queue: OwnedQueue, bytesUsed: UInt32, frames: Int, maximumInFlight: Int) {
        (self.name, self.queue, self.bytesUsed, self.frames) = (name, queue, bytesUsed, frames)
        self.maximumInFlight = min(maximumInFlight, queue.indices.count)
        meter = StageMeter("output \(name)")
    }

    func start() throws {
        try queue.with { try $0.start() }
        streaming = true
    }

    var canAccept: Bool { streaming && taken < frames && inFlight.count < maximumInFlight }

    func accept(_ frame: Frame) throws {
        let fd = try frame.slot.withDmaBuf { $0.fd }
        try queue.with { try $0.enqueue(frame.index, dmaBufs: [fd], bytesUsed: [bytesUsed]) }
        inFlight[frame.index.rawValue] = (frame, Pipeline.monotonicNow())
        meter.took(frame)
        taken += 1
    }

    var wait: (fd: FileDescriptorNumber, events: PollEvents)? {
        streaming && !inFlight.isEmpty ? (queue.fd, .writable) : nil
    }
    var isFinished: Bool { taken == frames && inFlight.count <= 1 }

    /// An output whose driver starts only with several buffers queued (vb2's minimum; vivid's
    /// is 2) never gives one back while its limit is below that minimum.
    var stallHint: String? {
        guard streaming, !inFlight.isEmpty else { return nil }
        let givenBack = taken - inFlight.count
        guard givenBack == 0, inFlight.count >= maximumInFlight else {
            return "holds \(inFlight.count) of at most \(maximumInFlight), \(givenBack) given back"
        }
        return
            "holds \(inFlight.count), its most, and none was given back since STREAMON: its driver may start only with more queued; more buffers let it hold more"
    }

    func advance(_ ready: PollEvents?) throws -> Bool {
        guard streaming, let events = ready, !events.isDisjoint(with: [.writable, .error, .hangUp]) else {
            return false
        }
        var progressed = false
        while let done = try queue.with({ try $0.dequeue() }) {
            guard let (frame, queuedAt) = inFlight.removeValue(forKey: done.index) else {
                throw PipelineError(
                    path: queue.path, "DQBUF returned \(BufferIndex(rawValue: done.index)), which was not queued")
            }
            if done.flags.contains(.error) { erroneous += 1 }
            returns.append(Pipeline.monotonicNow() - queuedAt)
            meter.letGo(frame)
            meter.passedOn()
            try frame.release()
            progressed = true
        }
        return progressed
    }

    /// STREAMOFF: the node gives back what it held; those frames are released.
    func stop() throws {
        guard streaming else { return }
        streaming = false
        try queue.with { try $0.stop() }
        for (frame, queuedAt) in inFlight.values {
            returns.append(Pipeline.monotonicNow() - queuedAt)
            meter.letGo(frame)
            meter.passedOn()
            try frame.release()
        }
        inFlight = [:]
    }

    /// How long the node held each frame it gave back since the last call.
    func takeLatencies(_ each: (Duration) -> Void) {
        returns.forEach(each)
        returns.removeAll(keepingCapacity: true)
    }
}
