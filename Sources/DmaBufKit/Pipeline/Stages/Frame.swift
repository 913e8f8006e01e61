import DmaBufKernel

/// A frame in one of a run's buffers, handed by its producer to every consumer at once. Each
/// consumer holds it until it is done with it (a display until it flipped away, an output node
/// until DQBUF gave it back); the producer gets its buffer back only when the last holder is
/// done, so a buffer is never refilled while any device may still read it.
final class Frame {
    /// The producer's buffer: its index there and the memory (a dma-buf, maybe a GEM handle).
    let index: BufferIndex
    let slot: PipelineSlot
    /// The frame number: the pattern's count, or the capture sequence number.
    let number: Int
    /// When the frame was made (drawn, or stamped by the capture driver), CLOCK_MONOTONIC.
    let timestamp: Duration
    /// The bytes of the buffer that carry the frame, when not the whole picture (a compressed frame).
    let bytesUsed: UInt32?
    @exclusivity(unchecked) private(set) var holders = 0
    /// Gets the buffer back: a stage, not a closure (a frame's closure context was a second heap
    /// object per frame). Every frame is let go before its producer's run ends.
    private unowned let producer: any FrameProducer

    init(
        index: BufferIndex, slot: PipelineSlot, number: Int, timestamp: Duration, bytesUsed: UInt32? = nil,
        producer: any FrameProducer
    ) {
        (self.index, self.slot, self.number, self.timestamp, self.bytesUsed) = (
            index, slot, number, timestamp, bytesUsed
        )
        self.producer = producer
    }

    /// A consumer takes the frame.
    func hold() { holders += 1 }

    /// A consumer is done with the frame; the last one returns the buffer to its producer.
    func release() throws {
        precondition(holders > 0, "frame \(number) released more often than held")
        holders -= 1
        if holders == 0 { try producer.frameReturned(self) }
    }
}

/// A stage that hands out frames in its buffers.
protocol FrameProducer: AnyObject {
    /// The last holder of `frame` is done with it: its buffer is the producer's again.
    func frameReturned(_ frame: Frame) throws
}

/// A stage that takes frames from a producer.
protocol FrameConsumer: AnyObject {
    /// Whether it can take a frame now (a producer hands one on only when every consumer can).
    var canAccept: Bool { get }
    /// Takes `frame`, already held for it; it calls `frame.release()` when done with it.
    func accept(_ frame: Frame) throws
}

extension Array where Element == any FrameConsumer {
    /// Hands `frame` to every consumer, holding it once for each before the first takes it (so
    /// that a consumer done at once cannot return the buffer while others have yet to take it).
    func deliver(_ frame: Frame) throws {
        for _ in self { frame.hold() }
        frame.hold()  // the producer's own hold, while it hands the frame out
        for consumer in self { try consumer.accept(frame) }
        try frame.release()
    }

    var canAccept: Bool { allSatisfy(\.canAccept) }
}
