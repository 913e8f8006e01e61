import CBenchReference
import DmaBufKit

/// The thread CPU clock that every loop is timed by, checked before anything is measured and
/// printed with the results. Under TCG a guest on the hpet clocksource reads a 200 µs busy loop
/// as 0 now and then and jumps by milliseconds later: a ratio from such a clock is noise.
public struct ClockCheck: Codable, Sendable {
    /// The smallest non-zero step between successive readings, in nanoseconds.
    public var stepNanoseconds: Int64
    /// The busy loops: how long each ran on CLOCK_MONOTONIC, in microseconds.
    public var busyLoopMicroseconds: Int
    public var busyLoops: Int
    /// Busy loops the thread CPU clock read as 0.
    public var zeroReadings: Int
    /// Thread CPU time over wall time of the busy loops (1 on an idle machine with a sound clock;
    /// above 1 only on a broken one).
    public var cpuOverWall: Spread
    /// Why the clock cannot be benchmarked with; nil when it can.
    public var problem: String?

    /// The least CPU time a measured run must take: long enough that the clock's step is under
    /// 1% of it, and never under 1 ms.
    public var minimumRunNanoseconds: Int64 { max(1_000_000, 100 * stepNanoseconds) }

    public static func measure(loops: Int = 200, busyMicroseconds: Int = 200) -> ClockCheck {
        var wall = [Int64](repeating: 0, count: loops), cpu = [Int64](repeating: 0, count: loops)
        cbench_clock_busy_loops(Int32(loops), Int64(busyMicroseconds) * 1000, &wall, &cpu)
        return ClockCheck(step: cbench_clock_step(100_000), busyMicroseconds: busyMicroseconds, wall: wall, cpu: cpu)
    }

    init(step: Int64, busyMicroseconds: Int, wall: [Int64], cpu: [Int64]) {
        (stepNanoseconds, busyLoopMicroseconds, busyLoops) = (step, busyMicroseconds, wall.count)
        zeroReadings = cpu.count { $0 == 0 }
        cpuOverWall =
            Spread(zip(cpu, wall).map { Double($0) / Double(max($1, 1)) }) ?? Spread(minimum: 0, median: 0, maximum: 0)
        if step == 0 {
            problem = "the thread CPU clock never moved in 100000 readings"
        } else if zeroReadings > 0 {
            problem =
                "the thread CPU clock read 0 for \(zeroReadings) of \(busyLoops) busy loops of \(busyMicroseconds) µs (it stalls)"
        } else if cpuOverWall.median < 0.5 {
            problem =
                "busy loops of \(busyMicroseconds) µs read a median of \(Int(cpuOverWall.median * 100))% of their wall time in thread CPU time (the clock lags)"
        } else if cpuOverWall.maximum > 1.1 {
            problem =
                "a busy loop read \(Int(cpuOverWall.maximum * 100))% of its wall time in thread CPU time (the clock jumps)"
        }
    }

    /// One line for the report.
    public var summary: String {
        var text =
            "thread CPU clock: step \(stepNanoseconds) ns; \(busyLoops) busy loops of \(busyLoopMicroseconds) µs read "
        text +=
            "\(Int(cpuOverWall.minimum * 100))/\(Int(cpuOverWall.median * 100))/\(Int(cpuOverWall.maximum * 100))% (min/median/max) of wall time, \(zeroReadings) read 0"
        text +=
            problem.map { " — unusable: \($0)" }
            ?? "; every run must take at least \(minimumRunNanoseconds / 1000) µs of CPU"
        return text
    }

    /// A run's CPU time that the clock cannot have measured: nothing, less than a tenth of the
    /// least a run is sized for (at its fastest pace seen), or more than the wall time it took
    /// (plus a step).
    func rejection(cpu: Int64, wall: Int64) -> String? {
        if cpu <= 0 { return "read \(cpu) ns of CPU time" }
        if cpu * 10 < minimumRunNanoseconds {
            return "read \(cpu) ns of CPU time for a run sized for at least \(minimumRunNanoseconds) ns"
        }
        if cpu > wall + max(stepNanoseconds, 1000) { return "read \(cpu) ns of CPU time in \(wall) ns of wall time" }
        return nil
    }
}

/// A benchmark that cannot give a true figure: the clock, not the code, is what failed.
public struct BenchmarkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
