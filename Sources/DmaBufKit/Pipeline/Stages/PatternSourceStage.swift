import DmaBufKernel

/// Frames drawn by the CPU into buffers from an allocator, as fast as the consumers take them:
/// frame n goes into a free buffer once every consumer can accept it, one frame a turn (a stop
/// asked between turns lands on a frame boundary).
final class PatternSourceStage: Stage, FrameProducer, Metered {
    let name = "pattern"
    let slots: [PipelineSlot]
    let frames: Int
    var consumers: [any FrameConsumer] = []
    private let draw: (PipelineSlot, Int) throws -> Void
    private var free: [Int]
    private(set) var made = 0
    let meter = StageMeter("pattern")

    /// `draw(slot, n)` writes frame n into a buffer.
    init(slots: [PipelineSlot], frames: Int, draw: @escaping (PipelineSlot, Int) throws -> Void) {
        (self.slots, self.frames, self.draw) = (slots, frames, draw)
        free = Array(slots.indices)
    }

    var wait: (fd: FileDescriptorNumber, events: PollEvents)? { nil }
    var isFinished: Bool { made == frames }

    func advance(_ ready: PollEvents?) throws -> Bool {
        guard made < frames, !free.isEmpty, consumers.canAccept else { return false }
        let index = free.removeFirst()
        let started = Pipeline.monotonicNow()  // a drawn frame's latency counts its drawing
        meter.took(slots[index])
        try draw(slots[index], made)
        let frame = Frame(
            index: BufferIndex(rawValue: UInt32(index)), slot: slots[index], number: made, timestamp: started,
            producer: self)
        made += 1
        meter.passedOn()
        try consumers.deliver(frame)
        return true
    }

    func frameReturned(_ frame: Frame) {
        meter.letGo(frame.slot)
        free.append(Int(frame.index.rawValue))
    }
}
