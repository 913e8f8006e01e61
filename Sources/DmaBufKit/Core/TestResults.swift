/// What a tool tried, as a tree of test results for test farms: KTAP (the kernel selftests'
/// format, which KernelCI and LAVA read) or JUnit XML. A group's outcome follows from its
/// subtests; figures travel as measurements (KTAP diagnostics `# name: value unit`).
public struct TestResult: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case passed
        case failed(String)
        case skipped(String)
    }

    public struct Measurement: Sendable, Equatable {
        public var name: String
        public var value: Double
        public var unit: String

        public init(_ name: String, _ value: Double, _ unit: String) {
            (self.name, self.value, self.unit) = (name, value, unit)
        }
    }

    public var name: String
    public var outcome: Outcome
    public var measurements: [Measurement]
    /// Free lines printed before the result (KTAP diagnostics, JUnit system-out).
    public var notes: [String]
    public var subtests: [TestResult]
    /// How long it took, when that was measured.
    public var seconds: Double?

    /// One thing tried.
    public init(_ name: String, _ outcome: Outcome, measurements: [Measurement] = [], notes: [String] = []) {
        (self.name, self.outcome, self.measurements, self.notes, subtests) = (name, outcome, measurements, notes, [])
    }

    /// A group: failed when a subtest failed, skipped when every one was (or there are none:
    /// then `emptyReason` says why), passed otherwise.
    public init(
        group name: String, _ subtests: [TestResult], emptyReason: String = "nothing to try", notes: [String] = []
    ) {
        self.name = name
        self.subtests = subtests
        self.measurements = []
        self.notes = notes
        let failed = subtests.filter { if case .failed = $0.outcome { true } else { false } }
        if subtests.isEmpty {
            outcome = .skipped(emptyReason)
        } else if !failed.isEmpty {
            outcome = .failed(failed.map(\.name).joined(separator: ", "))
        } else if subtests.allSatisfy({ if case .skipped = $0.outcome { true } else { false } }) {
            outcome = .skipped("every subtest skipped")
        } else {
            outcome = .passed
        }
    }

    /// Leaves by outcome, as a KTAP parser counts them.
    public var counts: (passed: Int, failed: Int, skipped: Int) {
        if subtests.isEmpty {
            switch outcome {
            case .passed: return (1, 0, 0)
            case .failed: return (0, 1, 0)
            case .skipped: return (0, 0, 1)
            }
        }
        return subtests.reduce((0, 0, 0)) { sum, test in
            let counts = test.counts
            return (sum.0 + counts.passed, sum.1 + counts.failed, sum.2 + counts.skipped)
        }
    }

    /// KTAP version 1 (Documentation/dev-tools/ktap.rst): the tests numbered from 1, a group's
    /// subtests indented by four spaces under `# Subtest: NAME`, skips as `# SKIP reason`.
    public static func ktap(_ tests: [TestResult]) -> String {
        var lines = ["KTAP version 1", "1..\(tests.count)"]
        for (index, test) in tests.enumerated() { test.appendKTAP(to: &lines, number: index + 1, indent: "") }
        return lines.joined(separator: "\n") + "\n"
    }

    private func appendKTAP(to lines: inout [String], number: Int, indent: String) {
        if !subtests.isEmpty {
            let inner = indent + "    "
            lines += [
                inner + "KTAP version 1", inner + "# Subtest: \(Self.line(name))", inner + "1..\(subtests.count)",
            ]
            for (index, test) in subtests.enumerated() { test.appendKTAP(to: &lines, number: index + 1, indent: inner) }
        }
        for note in notes { lines.append(indent + "# " + Self.line(note)) }
        for measurement in measurements {
            lines.append(
                indent + "# \(Self.line(measurement.name)): \(Self.figure(measurement.value)) \(measurement.unit)")
        }
        switch outcome {
        case .passed: lines.append(indent + "ok \(number) \(Self.line(name))")
        case .failed(let reason):
            if subtests.isEmpty { lines.append(indent + "# " + Self.line(reason)) }
            lines.append(indent + "not ok \(number) \(Self.line(name))")
        case .skipped(let reason): lines.append(indent + "ok \(number) \(Self.line(name)) # SKIP \(Self.line(reason))")
        }
    }

    /// One line without the `#` KTAP reserves for directives.
    static func line(_ text: String) -> String {
        String(text.map { $0 == "#" ? "№" : $0.isNewline ? " " : $0 })
    }

    static func figure(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// JUnit XML: a test suite per top-level test, a test case per leaf (named by its path
    /// below the suite), measurements and notes as the case's output.
    public static func junit(_ tests: [TestResult], name: String) -> String {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"\(escaped(name))\">\n"
        for suite in tests {
            var cases: [(path: String, test: TestResult)] = []
            func collect(_ test: TestResult, _ path: String) {
                if test.subtests.isEmpty { cases.append((path, test)) }
                for subtest in test.subtests {
                    collect(subtest, path.isEmpty ? subtest.name : "\(path) / \(subtest.name)")
                }
            }
            collect(suite, suite.subtests.isEmpty ? suite.name : "")
            let counts = suite.counts
            let seconds = cases.compactMap(\.test.seconds)
            xml +=
                "  <testsuite name=\"\(escaped(suite.name))\" tests=\"\(cases.count)\" failures=\"\(counts.failed)\" skipped=\"\(counts.skipped)\"\(time(seconds.isEmpty ? nil : seconds.reduce(0, +)))>\n"
            for (path, test) in cases {
                xml +=
                    "    <testcase classname=\"\(escaped(name)).\(escaped(suite.name))\" name=\"\(escaped(path))\"\(time(test.seconds))>"
                switch test.outcome {
                case .passed: break
                case .failed(let reason): xml += "<failure message=\"\(escaped(reason))\"/>"
                case .skipped(let reason): xml += "<skipped message=\"\(escaped(reason))\"/>"
                }
                let output =
                    test.notes + test.measurements.map { "\($0.name): \(figure($0.value)) \($0.unit)" }
                if !output.isEmpty { xml += "<system-out>\(escaped(output.joined(separator: "\n")))</system-out>" }
                xml += "</testcase>\n"
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }

    static func time(_ seconds: Double?) -> String {
        guard let seconds else { return "" }
        let milliseconds = Int((seconds * 1000).rounded())
        return " time=\"\(milliseconds / 1000).\(String(1000 + milliseconds % 1000).dropFirst())\""
    }

    static func escaped(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }
}
