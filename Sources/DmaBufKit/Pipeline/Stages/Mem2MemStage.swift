import DmaBufKernel

/// A mem2mem node as a transform: vim2m, or a stateful encoder or decoder (vicodec). Each frame
/// it is given is queued on its OUTPUT queue (the frame's dma-buf imported, with the frame's
/// payload) and released when the node gives that buffer back; each buffer the node fills on
/// its CAPTURE side (exported, in `slots`) goes to the consumers as a frame of its own, carrying
/// the number and timestamp of the frame it was made from, and back to the node once every
/// consumer released it.
///
/// A codec follows the stateful interface (dev-encoder.rst, dev-decoder.rst): once every frame
/// was queued it is drained (`V4L2_ENC_CMD_STOP`/`V4L2_DEC_CMD_STOP`) and finished with the
/// result flagged `LAST` (never dequeuing after it: that is EPIPE). A decoder's CAPTURE side is
/// set up only when the source-change event says what the stream is (`setUpCapture`).
final class Mem2MemStage: Stage, FrameConsumer, FrameProducer, Metered {
    let name: String
    let node: OwnedVideoDevice
    /// OUTPUT (DMABUF): what the node reads.
    let input: OwnedQueue
    /// CAPTURE (MMAP, exported): what the node writes; a decoder's comes with the stream.
    private(set) var output: OwnedQueue?
    private(set) var slots: [PipelineSlot]
    let bytesUsed: UInt32
    /// Frames it will be given.
    let frames: Int
    /// The most frames queued on the node at once: more would only wait there, holding the
    /// source's buffers and adding latency.
    let maximumInFlight: Int
    let codec: V4L2CodecRole?
    /// A decoder's CAPTURE set-up, after the source change: the queue (buffers exported into
    /// slots) for the format G_FMT reports.
    private let setUpCapture: ((V4L2Format) throws -> (OwnedQueue, [PipelineSlot]))?
    var consumers: [any FrameConsumer] = []
    private var freeInputs: [BufferIndex]
    private var inFlight: [UInt32: Frame] = [:]
    /// Number and timestamp of each frame queued, oldest first, until its result comes.
    private var pending: [(number: Int, timestamp: Duration)] = []
    /// Results waiting for every consumer to be able to take them.
    private var results: [V4L2BufferInfo] = []
    private var outputsQueued = 0
    private(set) var taken = 0
    private(set) var made = 0
    private(set) var erroneous = 0
    private(set) var drained = false
    private(set) var sourceChanges = 0
    private var stopSent = false
    private var streaming = false
    let meter: StageMeter

    init(
        name: String, node: OwnedVideoDevice, input: OwnedQueue, output: OwnedQueue?, slots: [PipelineSlot],
        bytesUsed: UInt32, frames: Int, maximumInFlight: Int = 2, codec: V4L2CodecRole? = nil,
        setUpCapture: ((V4L2Format) throws -> (OwnedQueue, [PipelineSlot]))? = nil
    ) {
        (self.name, self.node, self.input, self.output, self.slots) = (name, node, input, output, slots)
        (self.bytesUsed, self.frames, self.codec, self.setUpCapture) = (bytesUsed, frames, codec, setUpCapture)
        self.maximumInFlight = min(maximumInFlight, input.indices.count)
        freeInputs = input.indices
        meter = StageMeter("\(codec.map { "\($0)" } ?? "mem2mem") \(name)")
    }

    /// Subscribes to a codec's events, queues every CAPTURE buffer and starts both queues.
    func start() throws {
        if let codec {
            try node.with { try $0.subscribe(.endOfStream) }
            if codec == .decoder { try node.with { try $0.subscribe(.sourceChange) } }
        }
        try startCapture()
        try input.with { try $0.start() }
        streaming = true
    }

    private func startCapture() throws {
        guard let output else { return }
        for index in output.indices { try queueOutput(index) }
        try output.with { try $0.start() }
    }

    private func queueOutput(_ index: BufferIndex) throws {
        try output?.with { try $0.enqueue(index) }
        outputsQueued += 1
    }

    func frameReturned(_ frame: Frame) throws {
        if streaming && !drained { try queueOutput(frame.index) }
    }

    var canAccept: Bool { streaming && !freeInputs.isEmpty && inFlight.count < maximumInFlight }

    func accept(_ frame: Frame) throws {
        let index = freeInputs.removeFirst()
        let fd = try frame.slot.withDmaBuf { $0.fd }
        // Length 0: the whole dma-buf (a compressed frame's payload is far smaller than its buffer).
        try input.with {
            try $0.enqueue(index, dmaBufs: [fd], bytesUsed: [frame.bytesUsed ?? bytesUsed], lengths: [0])
        }
        inFlight[index.rawValue] = frame
        meter.took(frame)
        pending.append((frame.number, frame.timestamp))
        taken += 1
    }

    // A mem2mem node's poll says POLLERR while neither queue holds a buffer: wait only when
    // one does (or, for a codec, for its events).
    var wait: (fd: FileDescriptorNumber, events: PollEvents)? {
        guard streaming, !isFinished else { return nil }
        var events: PollEvents = codec == nil ? [] : .priority
        if !inFlight.isEmpty || (outputsQueued > 0 && !pending.isEmpty) { events.formUnion([.readable, .writable]) }
        return events.isEmpty ? nil : (input.fd, events)
    }

    var isFinished: Bool {
        let allIn = taken == frames && inFlight.isEmpty && results.isEmpty
        return codec == nil ? allIn && pending.isEmpty : allIn && drained
    }

    func advance(_ ready: PollEvents?) throws -> Bool {
        guard streaming else { return false }
        var progressed = try handleEvents()
        while let done = try input.with({ try $0.dequeue() }) {
            guard let frame = inFlight.removeValue(forKey: done.index) else {
                throw PipelineError(
                    path: input.path, "DQBUF returned \(BufferIndex(rawValue: done.index)), which was not queued")
            }
            freeInputs.append(BufferIndex(rawValue: done.index))
            meter.letGo(frame)
            try frame.release()
            progressed = true
        }
        while !drained, outputsQueued > 0, let result = try output?.with({ try $0.dequeue() }) {
            outputsQueued -= 1
            results.append(result)
            if result.flags.contains(.last) { drained = true }  // no DQBUF after it: EPIPE
        }
        while let result = results.first,
            consumers.canAccept || result.flags.contains(.error) || result.plane(0).bytesUsed == 0
        {
            results.removeFirst()
            let index = BufferIndex(rawValue: result.index)
            if result.plane(0).bytesUsed == 0 && codec != nil {
                continue  // the drain's empty last buffer: no frame, not requeued
            }
            let origin = pending.isEmpty ? (number: made, timestamp: result.timestamp) : pending.removeFirst()
            if result.flags.contains(.error) {
                erroneous += 1  // the node failed this frame: never shown or verified as good
                meter.drop(nil)
                try queueOutput(index)
                continue
            }
            made += 1
            meter.passedOn()
            try consumers.deliver(
                Frame(
                    index: index, slot: slots[Int(result.index)], number: origin.number, timestamp: origin.timestamp,
                    bytesUsed: codec == .encoder ? result.plane(0).bytesUsed : nil, producer: self))
            progressed = true
        }
        if let codec, !stopSent, taken == frames, output != nil {
            // Every frame queued: drain, so that the node gives back what it still holds.
            try node.with { try $0.send(.stop, as: codec) }
            stopSent = true
        }
        return progressed
    }

    /// A codec's events: the decoder's source change sets up its CAPTURE side (dev-decoder.rst,
    /// "Capture setup"); end of stream needs nothing here (the LAST buffer says the same).
    private func handleEvents() throws -> Bool {
        guard codec != nil else { return false }
        var progressed = false
        while let event = try node.with({ try $0.nextEvent() }) {
            guard event.type == .sourceChange else { continue }
            sourceChanges += 1
            guard output == nil, let setUpCapture else {
                throw PipelineError(
                    path: node.path,
                    "the stream changed resolution mid-run (source change \(sourceChanges)): not handled by this pipeline"
                )
            }
            let format = try node.with { try $0.format(.videoCapture) }
            let (queue, buffers) = try setUpCapture(format)
            (output, slots) = (queue, buffers)
            try startCapture()
            progressed = true
        }
        return progressed
    }

    /// STREAMOFF on both queues: the frames it still held are released.
    func stop() throws {
        guard streaming else { return }
        streaming = false
        try input.with { try $0.stop() }
        try output?.with { try $0.stop() }
        for frame in inFlight.values {
            meter.letGo(frame)
            try frame.release()
        }
        inFlight = [:]
    }

    /// REQBUFS(0) on both queues (their exported buffers closed first by the caller).
    func release() throws {
        try input.release()
        try output?.release()
    }
}
