import DmaBufKernel

/// The copy strategy's middle: each frame's picture copied by the CPU into one of the
/// display's own buffers, which goes on as a frame of its own (same number and timestamp); the
/// frame copied from is released at once, so its device may refill it while the copy is shown.
final class CopyStage: FrameConsumer, FrameProducer, Metered {
    let targets: [PipelineSlot]
    var consumers: [any FrameConsumer] = []
    private let copy: (_ from: PipelineSlot, _ into: PipelineSlot) throws -> Void
    private var free: [Int]
    private(set) var copies = 0
    let meter = StageMeter("copy (CPU)")

    init(targets: [PipelineSlot], copy: @escaping (_ from: PipelineSlot, _ into: PipelineSlot) throws -> Void) {
        (self.targets, self.copy) = (targets, copy)
        free = Array(targets.indices)
    }

    var canAccept: Bool { !free.isEmpty && consumers.canAccept }

    func accept(_ frame: Frame) throws {
        let index = free.removeFirst()
        meter.took(frame)
        try copy(frame.slot, targets[index])
        copies += 1
        meter.letGo(frame)
        meter.passedOn()
        let (number, timestamp) = (frame.number, frame.timestamp)
        try frame.release()
        try consumers.deliver(
            Frame(
                index: BufferIndex(rawValue: UInt32(index)), slot: targets[index], number: number, timestamp: timestamp,
                producer: self))
    }

    func frameReturned(_ frame: Frame) { free.append(Int(frame.index.rawValue)) }
}
