import DmaBufBench
import DmaBufKit
import Foundation
import Testing

/// The kernel's own KTAP parser, `tools/testing/kunit/kunit.py parse`, from Debian's
/// linux-source (`make unit-test` extracts it and sets DMABUFKIT_KTAP_PARSER).
enum KTAPParser {
    static var path: String? { ProcessInfo.processInfo.environment["DMABUFKIT_KTAP_PARSER"] }
    static let skipReason: Comment =
        "needs the kernel's KTAP parser: DMABUFKIT_KTAP_PARSER=…/kunit.py (make unit-test sets it up from linux-source-6.1 with Tests/Board/ktap-parser.sh)"

    struct Parsed {
        var status: Int32
        var passed = 0, failed = 0, skipped = 0, errors = 0
        var output: String
    }

    /// Parses `ktap` and reads the parser's own summary ("Testing complete. Ran N tests: passed: P, …").
    static func parse(_ ktap: String) throws -> Parsed {
        let scratch = try TemporaryDirectory()
        let input = "\(scratch.path)/results.ktap", output = "\(scratch.path)/parsed"
        try ktap.write(toFile: input, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [try #require(path), "parse", input]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        defer { try? handle.close() }
        (process.standardOutput, process.standardError) = (handle, handle)
        try process.run()
        process.waitUntilExit()
        let text = try String(contentsOfFile: output, encoding: .utf8)
        var parsed = Parsed(status: process.terminationStatus, output: text)
        let summary = try #require(
            text.range(of: "Testing complete. Ran "), "no summary (exit \(process.terminationStatus)) in:\n\(text)")
        let line = text[summary.upperBound...].prefix { $0 != "\n" }  // "180 tests: passed: 124, skipped: 56"
        for part in line.drop(while: { $0 != ":" }).dropFirst().split(separator: ",") {
            let words = part.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            guard words.count == 2, let count = Int(words[1]) else { continue }
            switch words[0] {
            case "passed": parsed.passed = count
            case "failed": parsed.failed = count
            case "skipped": parsed.skipped = count
            case "errors": parsed.errors = count
            default: break
            }
        }
        return parsed
    }
}

@Suite(.enabled(if: KTAPParser.path != nil, KTAPParser.skipReason))
struct KTAPTests {
    /// Every check and matrix cell of the probe reaches the kernel's parser, counted as the
    /// probe's own JSON report counts them.
    @Test func theProbesKTAPParses() throws {
        let ktap = try ToolRun.run("dmabuf-probe", ["--simulated", "--matrix", "--ktap"])
        #expect(ktap.status == 0, "\(ktap.errors)")
        let json = try ToolRun.run("dmabuf-probe", ["--simulated", "--matrix", "--json"])
        let report = try JSONDecoder().decode(ProbeReport.self, from: Data(json.output.utf8))
        let expected = report.testResults.reduce(into: (passed: 0, failed: 0, skipped: 0)) {
            let counts = $1.counts
            $0 = ($0.passed + counts.passed, $0.failed + counts.failed, $0.skipped + counts.skipped)
        }
        let checks =
            report.heaps.items.flatMap(\.checks).count + report.udmabuf.checks.count + report.syncFile.checks.count
            + report.drm.items.flatMap(\.checks).count + report.v4l2.items.flatMap(\.checks).count
            + (report.interfaces?.items.count ?? 0) + (report.matrix?.cells.count ?? 0)
        let parsed = try KTAPParser.parse(ktap.output)
        #expect(parsed.status == 0 && parsed.errors == 0, "\(parsed.output)")
        #expect(parsed.passed + parsed.failed + parsed.skipped == checks, "\(parsed.output)")
        #expect(
            (parsed.passed, parsed.failed, parsed.skipped) == expected && expected.passed > 100 && expected.skipped > 0,
            "\(expected) vs \(parsed.output.suffix(200))")
    }

    /// A scenario per test; a device that is absent is a skip with its reason.
    @Test func thePipesKTAPParses() throws {
        let scratch = try TemporaryDirectory()
        let absent = "\(scratch.path)/absent.yaml"
        try "name: absent camera\npipeline:\n  source: no-such-camera\n  frames: 2\n".write(
            toFile: absent, atomically: true, encoding: .utf8)
        let run = try ToolRun.run(
            "dmabuf-pipe",
            ["run", "--simulated", "--ktap"]
                + ["export.yaml", "copy.yaml"].map {
                    SimulatedScenarioTests.directory.appendingPathComponent($0).path
                } + [absent])
        #expect(run.status == ExitStatus.nothingToTest, "\(run.output)\(run.errors)")
        #expect(run.output.contains("# verified: 30 frames") && run.output.contains("# SKIP"), "\(run.output)")
        let parsed = try KTAPParser.parse(run.output)
        #expect((parsed.passed, parsed.failed, parsed.skipped, parsed.errors) == (2, 0, 1, 0), "\(parsed.output)")
    }

    /// Each loop a test with its figures; the targets a group (nothing to judge on the simulation).
    @Test func theBenchsKTAPParses() throws {
        let arguments = ["--simulated", "--runs", "1", "--rounds-scale", "0.02"]
        let run = try ToolRun.run("dmabuf-bench", arguments + ["--ktap"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("# swift per round: "), "\(run.output)")
        let json = try ToolRun.run("dmabuf-bench", arguments + ["--json"])
        let report = try JSONDecoder().decode(BenchReport.self, from: Data(json.output.utf8))
        let parsed = try KTAPParser.parse(run.output)
        #expect(
            (parsed.passed, parsed.failed, parsed.skipped, parsed.errors)
                == (report.loops.count, 0, report.skipped.count + 1, 0) && report.loops.count >= 5,
            "\(parsed.output)")
    }

    /// A failure deep in a group fails the group and the whole run, as the parser sees it.
    @Test func aFailureReachesTheParser() throws {
        let tests = [
            TestResult(
                group: "heaps",
                [
                    TestResult(group: "system", [TestResult("allocate 4 KiB", .passed)]),
                    TestResult(
                        group: "reserved",
                        [
                            TestResult("allocate 8 MiB", .failed("ENOMEM")),
                            TestResult("close", .skipped("no buffer # none")),
                        ]),
                ]),
            TestResult("sync_file", .passed, measurements: [.init("fences", 3, "fences")]),
        ]
        #expect(TestResult.ktap(tests).contains("ok 2 close # SKIP no buffer № none"))
        let parsed = try KTAPParser.parse(TestResult.ktap(tests))
        #expect(parsed.status != 0 && (parsed.passed, parsed.failed, parsed.skipped) == (2, 1, 1), "\(parsed.output)")
    }
}
