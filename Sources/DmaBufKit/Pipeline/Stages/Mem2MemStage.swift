import DmaBufKernel

/// A mem2mem node (vim2m) as a transform: each frame it is given is queued on its OUTPUT queue
/// (the frame's dma-buf imported) and released when the node gives that buffer back; each
/// buffer the node fills on its CAPTURE side (exported, in `slots`) goes to the consumers as a
/// frame of its own, carrying the number and timestamp of the frame it was made from, and back
/// to the node once every consumer released it.
final class Mem2MemStage: Stage, FrameConsumer {
    let name: String
    /// OUTPUT (DMABUF): what the node reads.
    let input: OwnedQueue
    /// CAPTURE (MMAP, exported): what the node writes.
    let output: OwnedQueue
    let slots: [PipelineSlot]
    let bytesUsed: UInt32
    /// Frames it will be given.
    let frames: Int
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
    private var streaming = false

    init(name: String, input: OwnedQueue, output: OwnedQueue, slots: [PipelineSlot], bytesUsed: UInt32, frames: Int) {
        (self.name, self.input, self.output, self.slots) = (name, input, output, slots)
        (self.bytesUsed, self.frames) = (bytesUsed, frames)
        freeInputs = input.indices
    }

    /// Queues every CAPTURE buffer and starts both queues.
    func start() throws {
        for index in output.indices { try queueOutput(index) }
        try output.with { try $0.start() }
        try input.with { try $0.start() }
        streaming = true
    }

    private func queueOutput(_ index: BufferIndex) throws {
        try output.with { try $0.enqueue(index) }
        outputsQueued += 1
    }

    var canAccept: Bool { streaming && !freeInputs.isEmpty }

    func accept(_ frame: Frame) throws {
        let index = freeInputs.removeFirst()
        let fd = try frame.slot.withDmaBuf { $0.fd }
        try input.with { try $0.enqueue(index, dmaBufs: [fd], bytesUsed: [bytesUsed]) }
        inFlight[index.rawValue] = frame
        pending.append((frame.number, frame.timestamp))
        taken += 1
    }

    // A mem2mem node's poll says POLLERR while neither queue holds a buffer: wait only when
    // one does.
    var waits: [(fd: FileDescriptorNumber, events: PollEvents)] {
        streaming && (!inFlight.isEmpty || (outputsQueued > 0 && !pending.isEmpty))
            ? [(input.fd, PollEvents([.readable, .writable]))] : []
    }
    var isFinished: Bool { taken == frames && inFlight.isEmpty && pending.isEmpty && results.isEmpty }

    func advance(_ ready: [PollEvents]) throws -> Bool {
        guard streaming else { return false }
        var progressed = false
        while let done = try input.with({ try $0.dequeue() }) {
            guard let frame = inFlight.removeValue(forKey: done.index) else {
                throw PipelineError(
                    path: input.path, "DQBUF returned \(BufferIndex(rawValue: done.index)), which was not queued")
            }
            freeInputs.append(BufferIndex(rawValue: done.index))
            try frame.release()
            progressed = true
        }
        while let result = try output.with({ try $0.dequeue() }) {
            outputsQueued -= 1
            results.append(result)
        }
        while let result = results.first, consumers.canAccept || result.flags.contains(.error) {
            results.removeFirst()
            let origin = pending.isEmpty ? (number: made, timestamp: result.timestamp) : pending.removeFirst()
            let index = BufferIndex(rawValue: result.index)
            if result.flags.contains(.error) {
                erroneous += 1  // the node failed this frame: never shown or verified as good
                try queueOutput(index)
                continue
            }
            made += 1
            try consumers.deliver(
                Frame(index: index, slot: slots[Int(result.index)], number: origin.number, timestamp: origin.timestamp)
                { [unowned self] frame in
                    if streaming { try queueOutput(frame.index) }
                })
            progressed = true
        }
        return progressed
    }

    /// STREAMOFF on both queues: the frames it still held are released.
    func stop() throws {
        guard streaming else { return }
        streaming = false
        try input.with { try $0.stop() }
        try output.with { try $0.stop() }
        for frame in inFlight.values { try frame.release() }
        inFlight = [:]
    }
}
