import DmaBufKernel
import Foundation
import Logging

/// A scripted pipeline test (`dmabuf-pipe run scenario.yaml`): the pipeline, what it must
/// achieve (`pipeline.expect`), or — for a scenario that must fail — the words its failure
/// must contain (`expect-failure`, see `ExpectedFailure`).
public struct PipelineScenario: Codable, Sendable {
    public var name: String
    public var description: String?
    public var pipeline: PipelineConfiguration
    public var expectFailure: ExpectedFailure?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, pipeline, expectFailure = "expect-failure"
    }

    public init(
        name: String, description: String? = nil, pipeline: PipelineConfiguration, expectFailure: ExpectedFailure? = nil
    ) {
        (self.name, self.description, self.pipeline, self.expectFailure) = (name, description, pipeline, expectFailure)
    }

    /// Runs the scenario: passed when the pipeline met its expectations, or, with
    /// `expect-failure`, when it failed for that reason (where the expectation depends on a
    /// sharing cell, that cell is tried first). A device that is absent or not accessible makes
    /// it skipped or denied, whatever it expected.
    public func run(
        kernel: any Kernel, logger: Logger, stopRequest: @escaping () -> Int32? = { nil },
        progress: (Pipeline.Progress) -> Void = { _ in }
    ) -> ScenarioResult {
        let started = ContinuousClock.now
        var result = judged(kernel: kernel, logger: logger, stopRequest: stopRequest, progress: progress)
        result.seconds = (ContinuousClock.now - started).seconds
        return result
    }

    private func judged(
        kernel: any Kernel, logger: Logger, stopRequest: @escaping () -> Int32?, progress: (Pipeline.Progress) -> Void
    ) -> ScenarioResult {
        var result = ScenarioResult(name: name, report: nil, error: nil, status: .failed, reason: "")
        let expectation = expectFailure.map { ($0, $0.applies(kernel: kernel, logger: logger)) }
        do {
            var pipeline = Pipeline(self.pipeline, kernel: kernel, logger: logger)
            pipeline.stopRequest = stopRequest
            let report = try pipeline.run(progress: progress)
            result.report = report
            result.reason = report.failures.joined(separator: "; ")
            if let signal = report.interruptedBy {
                result.status = .interrupted
                result.reason =
                    "interrupted by \(signal) after \(report.framesShown) of \(report.configuration.frames) frames"
                return result
            }
        } catch {
            result.error = "\(error)"
            result.reason = "\(error)"
            // A device that cannot be opened is absent or denied here, not a failed pipeline.
            if let error = error as? KernelError, error.operation == "open" {
                switch error.errno {
                case .ENOENT, .ENODEV, .ENXIO: result.status = .skipped
                case .EACCES, .EPERM: result.status = .denied
                default: break
                }
                if result.status != .failed { return result }
            }
        }
        if let (expected, outcome) = expectation, outcome.applies {
            let words = expected.reason
            let tried = outcome.evidence.map { " (\($0))" } ?? ""
            let failed = result.error != nil || result.report?.passed == false
            let asExpected = failed && result.reason.localizedCaseInsensitiveContains(words)
            result.status = asExpected ? .passed : .failed
            result.reason =
                failed
                ? "failed as expected (\(words))\(tried): \(result.reason)"
                : "was expected to fail (\(words))\(tried) but passed"
            if failed && !asExpected {
                result.reason = "failed, but not for the expected reason (\(words))\(tried): \(result.reason)"
            }
        } else {
            result.status = result.error == nil && result.report?.passed == true ? .passed : .failed
            if let (expected, outcome) = expectation, let evidence = outcome.evidence {
                let note = "expected to pass, not to fail (\(expected.reason)): \(evidence)"
                result.reason = result.reason.isEmpty ? note : "\(result.reason); \(note)"
            }
        }
        return result
    }
}

/// The outcome of one scenario, for the terminal, `--json` and `--junit`.
public struct ScenarioResult: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case passed, failed
        /// A device the scenario needs is absent: nothing to test here.
        case skipped
        /// A device node is not accessible to this user.
        case denied
        /// Stopped by a signal before its last frame.
        case interrupted
    }

    public var name: String
    public var report: PipelineReport?
    /// Set when the run could not go on (a device missing or busy, a stage failing).
    public var error: String?
    public var status: Status
    public var passed: Bool { status == .passed }
    /// Why it failed, was skipped or interrupted (or, for an expected failure, how).
    public var reason: String
    public var seconds: Double = 0

    enum CodingKeys: String, CodingKey { case name, report, error, status, passed, reason, seconds }

    public init(name: String, report: PipelineReport?, error: String?, status: Status, reason: String) {
        (self.name, self.report, self.error, self.status, self.reason) = (name, report, error, status, reason)
    }

    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        name = try values.decode(String.self, forKey: .name)
        report = try values.decodeIfPresent(PipelineReport.self, forKey: .report)
        error = try values.decodeIfPresent(String.self, forKey: .error)
        status = try values.decode(Status.self, forKey: .status)
        reason = try values.decode(String.self, forKey: .reason)
        seconds = try values.decodeIfPresent(Double.self, forKey: .seconds) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(name, forKey: .name)
        try values.encodeIfPresent(report, forKey: .report)
        try values.encodeIfPresent(error, forKey: .error)
        try values.encode(status, forKey: .status)
        try values.encode(passed, forKey: .passed)
        try values.encode(reason, forKey: .reason)
        try values.encode(seconds, forKey: .seconds)
    }

    /// The exit status of a set of results (see `ExitStatus`): a failure outweighs a denied
    /// device, which outweighs an absent one.
    public static func exitStatus(_ results: [ScenarioResult]) -> Int32 {
        let statuses = Set(results.map(\.status))
        if statuses.contains(.failed) { return ExitStatus.failed }
        if statuses.contains(.denied) { return ExitStatus.permission }
        if statuses.contains(.skipped) { return ExitStatus.nothingToTest }
        return ExitStatus.ok
    }

    /// JUnit XML, one test case per scenario; absent devices and interrupted runs are skipped
    /// cases with the reason.
    public static func junit(_ results: [ScenarioResult], suite: String = "dmabuf-pipe") -> String {
        TestResult.junit([TestResult(group: suite, results.map(\.testResult))], name: suite)
    }

    /// The scenario as a test for farms: its figures as measurements, its one-line summary as a note.
    public var testResult: TestResult {
        let outcome: TestResult.Outcome =
            switch status {
            case .passed: .passed
            case .failed, .denied: .failed(reason)
            case .skipped, .interrupted: .skipped(reason)
            }
        var test = TestResult(
            name, outcome, notes: report.map { $0.summary.split(separator: "\n").map(String.init) } ?? [])
        if let report {
            test.measurements = [
                .init("frames", Double(report.framesShown), "frames"),
                .init("fps", (report.framesPerSecond * 10).rounded() / 10, "fps"),
                .init("pipeline drops", Double(report.drops), "frames"),
                .init("late drops", Double(report.lateDrops), "frames"),
                .init("source drops", Double(report.sourceDrops), "frames"),
                .init("late flips", Double(report.lateFlips), "flips"),
                .init("verified", Double(report.framesVerified), "frames"),
                .init("mismatched", Double(report.framesMismatched), "frames"),
            ]
            if let latency = report.latencyMilliseconds {
                test.measurements.append(.init("latency median", (latency.median * 100).rounded() / 100, "ms"))
            }
        }
        test.seconds = seconds
        return test
    }
}
