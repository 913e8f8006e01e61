/// The regression gate: each loop's Swift/C median against the bound recorded for it, allowed
/// to pass it by no more than the run-to-run noise recorded beside it (the spread of the
/// medians of separate runs). A bound file has one line per loop:
///
///     # loop | parameter | bound (Swift/C median) | noise
///     heap alloc+close | system 4 KiB | 1.08 | 0.06
///
/// A loop is matched by its name and parameter; a bound no loop of the run matches is reported,
/// so a renamed loop cannot slip out of the gate unnoticed.
public struct BenchGate: Sendable {
    public struct Bound: Sendable, Equatable {
        public var loop: String
        public var parameter: String
        public var ratio: Double
        public var noise: Double
        public var limit: Double { ratio + noise }
    }

    public struct Verdict: Sendable {
        public var bound: Bound
        /// The run's median, nil when no loop of the run matched the bound.
        public var measured: Double?
        public var passed: Bool { measured.map { $0 <= bound.limit } ?? false }

        public var line: String {
            let figures = "bound \(BenchReport.format(bound.ratio, 3)) + noise \(BenchReport.format(bound.noise, 3))"
            guard let measured else {
                return "FAIL \(bound.loop) \(bound.parameter): not measured in this run (\(figures))"
            }
            return
                "\(passed ? "ok  " : "FAIL") \(bound.loop) \(bound.parameter): Swift/C \(BenchReport.format(measured, 3)) "
                + "\(passed ? "≤" : ">") \(BenchReport.format(bound.limit, 3)) (\(figures))"
        }
    }

    public let bounds: [Bound]

    /// Parses a bound file; errors name the line.
    public init(text: String, source: String) throws {
        var bounds: [Bound] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            if content.allSatisfy(\.isWhitespace) { continue }
            let fields = content.split(separator: "|").map(trimmed)
            guard fields.count == 4, let ratio = Double(fields[2]), let noise = Double(fields[3]), ratio > 0,
                noise >= 0
            else {
                throw BenchmarkError(
                    "\(source):\(number + 1): expected `loop | parameter | bound | noise` with a bound above 0 and noise of 0 or more, found `\(line)`"
                )
            }
            bounds.append(Bound(loop: fields[0], parameter: fields[1], ratio: ratio, noise: noise))
        }
        if bounds.isEmpty { throw BenchmarkError("\(source): no bounds") }
        self.bounds = bounds
    }

    /// Each bound against the run's loops (their median Swift/C).
    public func judge(_ loops: [LoopMeasurement]) -> [Verdict] {
        bounds.map { bound in
            let loop = loops.first { $0.loop == bound.loop && $0.parameter.hasPrefix(bound.parameter) }
            return Verdict(bound: bound, measured: loop?.ratio?.median)
        }
    }
}

private func trimmed(_ text: Substring) -> String {
    String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
}
