import DmaBufKernel
import Foundation

/// A consumer that keeps a copy of the last frames it was given (read under DMA_BUF SYNC) and
/// lets go of each at once: what a check downstream compares the frames it receives with.
final class FrameRecorder: FrameConsumer {
    struct Recorded {
        let number: Int
        let recordedAt: Duration
        let bytes: [UInt8]
    }
    /// Bytes of each frame compared (the picture's size).
    let length: Int
    let capacity: Int
    private(set) var frames: [Recorded] = []
    private(set) var last: Int?

    init(length: Int, capacity: Int) { (self.length, self.capacity) = (length, capacity) }

    var canAccept: Bool { true }

    func accept(_ frame: Frame) throws {
        let length = length
        let bytes = try frame.slot.withDmaBuf { buffer in
            try buffer.read { Array(UnsafeRawBufferPointer(rebasing: $0.prefix(length))) }
        }
        frames.append(Recorded(number: frame.number, recordedAt: Pipeline.monotonicNow(), bytes: bytes))
        if frames.count > capacity { frames.removeFirst(frames.count - capacity) }
        last = frame.number
        try frame.release()
    }

    /// The frame recorded with exactly these bytes: among those numbered `from` on first (in
    /// order), then the older ones; nil when none is.
    func match(_ picture: UnsafeRawBufferPointer, from: Int?) -> Recorded? {
        guard picture.count >= length else { return nil }
        func same(_ recorded: Recorded) -> Bool {
            recorded.bytes.withUnsafeBytes { memcmp($0.baseAddress!, picture.baseAddress!, length) == 0 }
        }
        let newer = frames.filter { from == nil || $0.number >= from! }
        return newer.first(where: same) ?? frames.filter { from != nil && $0.number < from! }.last(where: same)
    }
}
