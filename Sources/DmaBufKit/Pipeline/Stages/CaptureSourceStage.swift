import DmaBufKernel

/// Frames from a V4L2 capture queue (its buffers exported as dma-bufs in `slots`, or, on a
/// DMABUF queue, the dma-bufs it imports): each frame
/// dequeued goes to every consumer and back to the driver once all are done. A frame no
/// consumer can take goes straight back (booked as not shown); gaps in the sequence are booked
/// by cause in the tally (see `CaptureLedger`).
final class CaptureSourceStage: Stage, FrameProducer, Metered {
    let name: String
    let queue: OwnedQueue
    let slots: [PipelineSlot]
    let frames: Int
    var consumers: [any FrameConsumer] = []
    // Per-frame state of one thread: `@exclusivity(unchecked)` spares the runtime's access
    // checks (see `StageMeter`).
    @exclusivity(unchecked) private(set) var tally = RunTally()
    @exclusivity(unchecked) private(set) var report: PipelineReport
    @exclusivity(unchecked) private(set) var delivered = 0
    @exclusivity(unchecked) private var streaming = false
    @exclusivity(unchecked) private var emptyBeforePoll = false
    /// Frames given straight back since the last one was passed on: no consumer could take them.
    @exclusivity(unchecked) private var refusedSincePassedOn = 0
    let meter: StageMeter

    /// Takes `queue` (its buffers not yet queued); `report` collects drops, repeats and errors.
    init(name: String, queue: OwnedQueue, slots: [PipelineSlot], frames: Int, report: PipelineReport) {
        (self.name, self.queue, self.slots, self.frames, self.report) = (name, queue, slots, frames, report)
        meter = StageMeter("capture \(name)")
    }

    /// Queues every buffer and starts streaming.
    func start() throws {
        for index in queue.indices { try enqueue(index) }
        try queue.with { try $0.start() }
        tally.captureStarted()
        streaming = true
    }

    private func enqueue(_ index: BufferIndex) throws {
        if queue.memory == .dmabuf {
            let fd = try slots[Int(index.rawValue)].withDmaBuf { $0.fd }
            try queue.with { try $0.enqueue(index, dmaBufs: [fd]) }
        } else {
            try queue.with { try $0.enqueue(index) }
        }
        tally.queued(index)
    }

    var wait: (fd: FileDescriptorNumber, events: PollEvents)? {
        streaming && !isFinished ? (queue.fd, .readable) : nil
    }
    var isFinished: Bool { delivered == frames }

    /// It dequeues without waiting when the last poll found the queue readable (or nothing was
    /// polled for it yet). A frame there is one that was done before it asked (booked so for the
    /// drop ledger), unless the ask before found nothing and the poll since woke for this queue.
    /// A poll that found nothing counts as an ask that found nothing: no DQBUF to hear EAGAIN.
    func advance(_ ready: PollEvents?) throws -> Bool {
        guard streaming, !isFinished else { return false }
        let readable = ready.map { !$0.isDisjoint(with: [.readable, .error, .hangUp]) }
        if readable == false {
            emptyBeforePoll = true
            return false
        }
        let wokeForIt = emptyBeforePoll && readable == true
        guard let frame = try queue.with({ try $0.dequeue() }) else {
            emptyBeforePoll = true
            return false
        }
        emptyBeforePoll = false
        tally.captured(frame, wasDone: !wokeForIt, &report)
        let index = BufferIndex(rawValue: frame.index)
        let slot = slots[Int(frame.index)]
        meter.took(slot)
        if frame.flags.contains(.error) {
            report.erroneousFrames += 1
            meter.drop(slot)
            try enqueue(index)
            return true
        }
        guard consumers.canAccept else {
            refusedSincePassedOn += 1
            meter.drop(slot)
            try enqueue(index)  // nobody downstream can take it: not a frame moved on
            return false
        }
        delivered += 1
        refusedSincePassedOn = 0
        meter.passedOn()
        try consumers.deliver(
            Frame(
                index: index, slot: slots[Int(frame.index)], number: Int(frame.sequence), timestamp: frame.timestamp,
                producer: self))
        return true
    }

    var stallHint: String? {
        guard refusedSincePassedOn > 0 else { return nil }
        let full = consumers.filter { !$0.canAccept }.map { ($0 as? any Stage)?.name ?? "\(type(of: $0))" }
        return
            "\(refusedSincePassedOn) frames went straight back since one was passed on, as \(full.isEmpty ? "a consumer" : full.joined(separator: " and ")) could not take more"
    }

    func frameReturned(_ frame: Frame) throws {
        meter.letGo(frame.slot)
        if streaming { try enqueue(frame.index) }
    }

    /// The capture side's figures (drops by cause, repeats, erroneous frames) into a run's report.
    func copyFigures(into report: inout PipelineReport) {
        (report.drops, report.lateDrops, report.sourceDrops) = (
            self.report.drops, self.report.lateDrops, self.report.sourceDrops
        )
        (report.repeats, report.erroneousFrames) = (self.report.repeats, self.report.erroneousFrames)
    }

    /// Stops streaming: the driver gives every buffer back.
    func stop() throws {
        streaming = false
        try queue.with { try $0.stop() }
    }
}
