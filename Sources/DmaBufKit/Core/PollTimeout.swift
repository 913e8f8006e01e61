import DmaBufKernel

extension Duration {
    /// This duration as `poll(2)`'s timeout: whole milliseconds, negative durations as 0.
    var pollMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        return Int32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
    }
}
