import DmaBufKit

/// The bench as test results (`--ktap`): each loop and pipeline a test with its figures as
/// measurements, each target a test that fails when missed (the exit status does not).
extension BenchReport {
    public var testResults: [TestResult] {
        let loopTests =
            loops.map { loop in
                var test = TestResult("\(loop.loop) \(loop.parameter)", .passed)
                test.measurements.append(.init("swift per round", loop.swiftNanosecondsPerRound.median.rounded(), "ns"))
                if let c = loop.cNanosecondsPerRound {
                    test.measurements.append(.init("C per round", c.median.rounded(), "ns"))
                }
                if let ratio = loop.ratio {
                    test.measurements.append(.init("Swift/C", (ratio.median * 1000).rounded() / 1000, "ratio"))
                }
                return test
            } + skipped.map { TestResult($0.split(separator: ":").first.map(String.init) ?? $0, .skipped($0)) }
        var tests = [TestResult(group: "loops", loopTests, emptyReason: "not asked for")]
        if !pipelines.isEmpty {
            tests.append(
                TestResult(
                    group: "pipelines",
                    pipelines.map { cost in
                        TestResult(
                            "\(cost.contender.rawValue) \(cost.width)x\(cost.height) \(cost.buffers) buffers"
                                + (cost.contender == .streams ? " \(cost.streams) streams" : ""), .passed,
                            measurements: [
                                .init(
                                    "CPU per frame", (cost.cpuMillisecondsPerFrame.median * 1000).rounded() / 1000, "ms"
                                )
                            ])
                    }))
        }
        tests.append(
            TestResult(
                group: "targets",
                targets.map {
                    TestResult($0.goal, $0.met ? .passed : .failed("missed: \($0.detail)"), notes: [$0.detail])
                },
                emptyReason: "nothing measured to judge"))
        if let interruptedBy {
            tests.append(TestResult("complete", .failed("interrupted by \(interruptedBy)")))
        }
        return tests
    }
}
