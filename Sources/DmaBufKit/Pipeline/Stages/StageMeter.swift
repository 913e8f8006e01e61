import DmaBufKernel

/// What one stage of a run did, in the report: frames taken in and handed on (or, for a sink,
/// let go), frames it dropped, the most it held at once and how long it held each.
public struct StageFigures: Codable, Sendable, Equatable {
    /// The stage's role and device (`capture /dev/video0`, `encoder /dev/video7`, …).
    public var stage: String
    public var framesIn: Int
    public var framesOut: Int
    /// Frames it took and did not pass on: not taken downstream, or failed (error-flagged).
    public var dropped: Int
    public var maximumHeld: Int
    /// From taking a frame to letting it go, in milliseconds.
    public var heldMilliseconds: Spread?

    /// `capture /dev/video0: 20 in, 20 out, 0 dropped, at most 3 held, held 40.1/52.3/90.0 ms`.
    public var summary: String {
        "\(stage): \(framesIn) in, \(framesOut) out, \(dropped) dropped, at most \(maximumHeld) held"
            + (heldMilliseconds.map {
                ", held "
                    + [$0.minimum, $0.median, $0.maximum].map { String(format: "%.1f", $0) }.joined(separator: "/")
                    + " ms"
            } ?? "")
    }
}

/// Counts for `StageFigures`, kept by a stage as frames pass: `took` when a frame comes in (a
/// capture dequeued, a frame accepted), `passedOn` when it goes to the consumers, `letGo` when the
/// stage is done holding it, `dropped` when it ends here.
///
/// Its state is touched once or twice a frame from one thread: the runtime's exclusivity checks
/// (`@exclusivity(unchecked)`) cost more than the counting does.
final class StageMeter {
    let stage: String
    @exclusivity(unchecked) private(set) var framesIn = 0
    @exclusivity(unchecked) private(set) var framesOut = 0
    @exclusivity(unchecked) private(set) var dropped = 0
    @exclusivity(unchecked) private(set) var maximumHeld = 0
    /// What it holds and since when (CLOCK_MONOTONIC, ns): a few at most, so a list beats hashing.
    @exclusivity(unchecked) private var held: [(item: ObjectIdentifier, at: Int64)] = []
    @exclusivity(unchecked) private var heldFor: [Double] = []

    init(_ stage: String) { self.stage = stage }

    /// A frame (or buffer: any object standing for it) came in.
    func took(_ item: AnyObject) {
        framesIn += 1
        let id = ObjectIdentifier(item)
        if let index = held.firstIndex(where: { $0.item == id }) {
            held[index].at = Pipeline.monotonicNanoseconds()
        } else {
            held.append((id, Pipeline.monotonicNanoseconds()))
        }
        maximumHeld = max(maximumHeld, held.count)
    }

    func passedOn() { framesOut += 1 }

    func letGo(_ item: AnyObject) {
        let id = ObjectIdentifier(item)
        guard let index = held.firstIndex(where: { $0.item == id }) else { return }
        heldFor.append(Double(Pipeline.monotonicNanoseconds() - held.remove(at: index).at) / 1e6)
    }

    /// The frame ends here (nil: one the stage made itself, never taken in).
    func drop(_ item: AnyObject?) {
        dropped += 1
        if let item { letGo(item) }
    }

    var figures: StageFigures {
        StageFigures(
            stage: stage, framesIn: framesIn, framesOut: framesOut, dropped: dropped, maximumHeld: maximumHeld,
            heldMilliseconds: Spread(heldFor))
    }
}

/// A stage that reports its figures.
protocol Metered: AnyObject {
    var meter: StageMeter { get }
}
