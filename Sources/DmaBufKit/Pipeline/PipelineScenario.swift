import Foundation
import Logging
import Yams

/// A scripted pipeline test (`dmabuf-pipe run scenario.yaml`): the pipeline, what it must
/// achieve (`pipeline.expect`), or — for a scenario that must fail — the words its failure
/// must contain (`expect-failure`).
public struct PipelineScenario: Codable, Sendable {
    public var name: String
    public var description: String?
    public var pipeline: PipelineConfiguration
    public var expectFailure: String?

    enum CodingKeys: String, CodingKey { case name, description, pipeline, expectFailure = "expect-failure" }

    public init(name: String, description: String? = nil, pipeline: PipelineConfiguration, expectFailure: String? = nil) {
        (self.name, self.description, self.pipeline, self.expectFailure) = (name, description, pipeline, expectFailure)
    }

    /// Reads a scenario file; errors name the file and what is wrong in it.
    public static func load(_ path: String) throws(KernelError) -> PipelineScenario {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KernelError("open", .ENOENT, path: path, reason: "cannot read the scenario file")
        }
        do { return try YAMLDecoder().decode(PipelineScenario.self, from: text) } catch {
            throw KernelError("parse", .EINVAL, path: path, reason: "not a scenario: \(error)")
        }
    }

    /// Runs the scenario: passed when the pipeline met its expectations, or, with
    /// `expect-failure`, when it failed for that reason.
    public func run(kernel: any Kernel, logger: Logger, progress: (Pipeline.Progress) -> Void = { _ in }) -> ScenarioResult {
        var result = ScenarioResult(name: name, report: nil, error: nil, passed: false, reason: "")
        let started = ContinuousClock.now
        do {
            let report = try Pipeline(pipeline, kernel: kernel, logger: logger).run(progress: progress)
            result.report = report
            result.reason = report.failures.joined(separator: "; ")
        } catch {
            result.error = error.description
            result.reason = error.description
        }
        result.seconds = (ContinuousClock.now - started).seconds
        if let expected = expectFailure {
            let failed = result.error != nil || result.report?.passed == false
            result.passed = failed && result.reason.localizedCaseInsensitiveContains(expected)
            result.reason = failed ? "failed as expected (\(expected)): \(result.reason)" : "was expected to fail (\(expected)) but passed"
            if failed && !result.passed { result.reason = "failed, but not for the expected reason (\(expected)): \(result.reason)" }
        } else {
            result.passed = result.error == nil && result.report?.passed == true
        }
        return result
    }
}

/// The outcome of one scenario, for the terminal, `--json` and `--junit`.
public struct ScenarioResult: Codable, Sendable {
    public var name: String
    public var report: PipelineReport?
    /// Set when the run could not go on (a device missing or busy, a stage failing).
    public var error: String?
    public var passed: Bool
    /// Why it failed (or, for an expected failure, how).
    public var reason: String
    public var seconds: Double = 0

    /// JUnit XML, one test case per scenario.
    public static func junit(_ results: [ScenarioResult], suite: String = "dmabuf-pipe") -> String {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failures = results.filter { !$0.passed }.count
        let total = results.reduce(0) { $0 + $1.seconds }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites><testsuite name=\"\(suite)\" tests=\"\(results.count)\" failures=\"\(failures)\" skipped=\"0\" time=\"\(String(format: "%.3f", total))\">\n"
        for result in results {
            xml += "  <testcase classname=\"\(suite)\" name=\"\(escaped(result.name))\" time=\"\(String(format: "%.3f", result.seconds))\">"
            if !result.passed { xml += "<failure message=\"\(escaped(result.reason))\"/>" }
            if let summary = result.report?.summary { xml += "<system-out>\(escaped(summary))</system-out>" }
            xml += "</testcase>\n"
        }
        return xml + "</testsuite></testsuites>\n"
    }
}
