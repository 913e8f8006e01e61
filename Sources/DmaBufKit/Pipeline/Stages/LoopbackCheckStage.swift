import DmaBufKernel

/// The capture side of a video loopback, checking that what comes back is what was sent: every
/// frame it captures must be byte for byte one of the frames the recorder kept, none older than
/// one already seen. Frames before the first match are the warm-up (vivid shows its test
/// pattern or noise until the output's first frame is on show). It is finished once it has seen
/// the last frame sent, or `patience` after the source finished without it.
final class LoopbackCheckStage: Stage {
    let name: String
    let queue: OwnedQueue
    let slots: [PipelineSlot]
    let recorder: FrameRecorder
    let sourceFinished: () -> Bool
    let patience: Duration
    private(set) var warmUp = 0
    private(set) var compared = 0
    private(set) var mismatched = 0
    /// Frames older than one already seen.
    private(set) var outOfOrder = 0
    /// Per frame number seen: from its recording to the first capture showing it.
    private(set) var firstSeen: [Int: Duration] = [:]
    private(set) var lastSeen: Int?
    private(set) var gaveUp = false
    private var streaming = false
    private var giveUpAt: ContinuousClock.Instant?

    init(
        name: String, queue: OwnedQueue, slots: [PipelineSlot], recorder: FrameRecorder,
        patience: Duration = .seconds(10),
        sourceFinished: @escaping () -> Bool
    ) {
        (self.name, self.queue, self.slots, self.recorder, self.patience) = (name, queue, slots, recorder, patience)
        self.sourceFinished = sourceFinished
    }

    func start() throws {
        for index in queue.indices { try queue.with { try $0.enqueue(index) } }
        try queue.with { try $0.start() }
        streaming = true
    }

    var wait: (fd: FileDescriptorNumber, events: PollEvents)? { streaming ? (queue.fd, .readable) : nil }

    var isFinished: Bool {
        gaveUp || (sourceFinished() && recorder.last != nil && lastSeen == recorder.last)
    }

    func advance(_ ready: PollEvents?) throws -> Bool {
        if sourceFinished() {
            let now = ContinuousClock.now
            giveUpAt = giveUpAt ?? now + patience
            if now >= giveUpAt! {
                gaveUp = true
                return true
            }
        }
        guard streaming, let frame = try queue.with({ try $0.dequeue() }) else { return false }
        let seenAt = Pipeline.monotonicNow()
        let match = try slots[Int(frame.index)].withDmaBuf { buffer in
            try buffer.read { recorder.match($0, from: lastSeen) }
        }
        try queue.with { try $0.enqueue(BufferIndex(rawValue: frame.index)) }
        // Only a frame seen for the first time counts as one moved on.
        guard let match else {
            if lastSeen == nil { warmUp += 1 } else { (compared, mismatched) = (compared + 1, mismatched + 1) }
            return false
        }
        compared += 1
        if let lastSeen, match.number < lastSeen {
            outOfOrder += 1
            return false
        }
        let new = firstSeen[match.number] == nil
        if new { firstSeen[match.number] = seenAt - match.recordedAt }
        lastSeen = match.number
        return new
    }

    func stop() throws {
        guard streaming else { return }
        streaming = false
        try queue.with { try $0.stop() }
    }
}
