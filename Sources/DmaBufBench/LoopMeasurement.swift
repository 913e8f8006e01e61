import DmaBufKit

#if canImport(Glibc)
    import Glibc
#endif

/// One benchmark loop measured side by side: the C reference and DmaBufKit's typed API doing
/// the same ioctls on the same descriptors, alternating run by run.
public struct LoopMeasurement: Codable, Sendable {
    /// What one round does, e.g. "heap alloc+close".
    public var loop: String
    /// The variant, e.g. "4 KiB" or "vivid-000-vid-cap 320x180".
    public var parameter: String
    /// Bytes per round where size matters (for µs per MiB).
    public var bytes: Int?
    public var rounds: Int
    public var runs: Int
    /// Thread CPU time per round, in nanoseconds, over the runs.
    public var cNanosecondsPerRound: Spread?
    public var swiftNanosecondsPerRound: Spread
    /// Swift / C of each run (the two ran back to back on the same descriptors).
    public var ratio: Spread?

    /// The same loop through each lower layer of the Swift side (shim, LinuxKernel, any
    /// Kernel), timed in the same runs: what each layer up to the typed API adds.
    public var layers: [Layer] = []

    public struct Layer: Codable, Sendable {
        public var name: String
        public var nanosecondsPerRound: Spread
        public var ratio: Spread?
    }

    /// Median µs per MiB of buffer, for loops whose cost grows with size (buffers of 1 MiB and up).
    public var cMicrosecondsPerMiB: Double?
    public var swiftMicrosecondsPerMiB: Double?

    init(
        loop: String, parameter: String, bytes: Int?, rounds: Int, c: [Int64], swift: [Int64],
        layers: [(name: String, times: [Int64])] = []
    ) {
        (self.loop, self.parameter, self.bytes, self.rounds, self.runs) = (loop, parameter, bytes, rounds, swift.count)
        let perRound = { (ns: Int64) in Double(ns) / Double(rounds) }
        cNanosecondsPerRound = Spread(c.map(perRound))
        swiftNanosecondsPerRound = Spread(swift.map(perRound))!
        ratio = c.isEmpty ? nil : Spread(zip(swift, c).map { Double($0) / Double(max($1, 1)) })
        self.layers = layers.map { name, times in
            Layer(
                name: name, nanosecondsPerRound: Spread(times.map(perRound))!,
                ratio: c.isEmpty ? nil : Spread(zip(times, c).map { Double($0) / Double(max($1, 1)) }))
        }
        let mebibytes = bytes.flatMap { $0 >= 1 << 20 ? Double($0) / Double(1 << 20) : nil }
        cMicrosecondsPerMiB = mebibytes.flatMap { mib in cNanosecondsPerRound.map { $0.median / 1000 / mib } }
        swiftMicrosecondsPerMiB = mebibytes.map { swiftNanosecondsPerRound.median / 1000 / $0 }
    }
}

/// The calling thread's CPU time in nanoseconds: what both sides of a comparison are timed by,
/// so that other threads (vivid's kthread, the host's) do not count.
func threadCPUNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Runs `body` and returns the thread CPU time it took.
@inline(__always)
func timed(_ body: () throws -> Void) rethrows -> Int64 {
    let start = threadCPUNanoseconds()
    try body()
    return threadCPUNanoseconds() - start
}
