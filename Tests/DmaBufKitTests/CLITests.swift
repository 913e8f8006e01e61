import DmaBufKit
import DmaBufSimulation
import Foundation
import FoundationXML
import Logging
import Testing

/// The tools as a user runs them, on the simulated kernel: bad values never trap, every exit
/// code keeps its promise, a signal keeps the report.
@Suite("Command-line tools")
struct CLITests {
    /// Values for a numeric flag: the edges of Int, a double where an integer is wanted, NaN, infinity.
    static let hostileValues = ["-1", "0", "\(Int.max)", "99999999999999999999", "1e300", "nan", "inf", "-inf"]
    static let numericFlags = [
        "--frames", "--fps", "--buffers", "--verify-every", "--test-pattern", "--min-fps", "--max-drops",
        "--max-late-drops", "--max-source-drops",
    ]

    /// Every numeric flag with every hostile value: exit 64 (or, for a value the flag allows, a
    /// run that ends normally); never a trap (SIGILL/SIGTRAP would read as 132/133).
    @Test(arguments: numericFlags)
    func numericFlagsNeverTrap(_ flag: String) throws {
        for value in Self.hostileValues {
            let run = try ToolRun.run("dmabuf-pipe", ["run", "--simulated", "--frames", "3", "\(flag)=\(value)"])
            let allowed = Self.allows(flag, value)
            #expect(run.status == (allowed ? 0 : 64), "\(flag)=\(value): exit \(run.status)\n\(run.errors)")
            if !allowed {
                #expect(
                    run.errors.contains(flag.dropFirst(2)) || run.errors.contains("Error:"),
                    "\(flag)=\(value): \(run.errors)")
            }
        }
    }

    static func allows(_ flag: String, _ value: String) -> Bool {
        switch (flag, value) {
        case ("--verify-every", "0"), ("--test-pattern", "0"), ("--min-fps", "0"), ("--max-drops", "0"),
            ("--max-late-drops", "0"), ("--max-source-drops", "0"):
            true
        default: false
        }
    }

    @Test(arguments: ["0x0", "-640x480", "640", "640x", "x480", "99999x1", "640x480x2", "1e3x480"])
    func badSizesAreUsageErrors(_ size: String) throws {
        let run = try ToolRun.run("dmabuf-pipe", ["run", "--simulated", "--size=\(size)"])
        #expect(run.status == 64, "\(size): \(run.errors)")
        #expect(run.errors.contains("size"))
    }

    @Test func conflictingSettingsAreUsageErrors() throws {
        let cases: [[String]] = [
            ["--mem2mem", "vim2m", "--strategy", "import"],
            ["--from", "pattern", "--strategy", "export"],
            ["--to", "file:x.raw", "--strategy", "copy"],
            [SimulatedScenarioTests.directory.appendingPathComponent("export.yaml").path, "--frames", "3"],
        ]
        for arguments in cases {
            let run = try ToolRun.run("dmabuf-pipe", ["run", "--simulated"] + arguments)
            #expect(run.status == 64, "\(arguments): exit \(run.status) \(run.errors)")
        }
    }

    /// Outputs are checked before anything runs, with the errno that explains them.
    @Test func unwritableOutputsAreFoundFirst() throws {
        let directory = try TemporaryDirectory()
        let cases: [([String], String)] = [
            (["--junit", "/nonexistent/report.xml"], "ENOENT"),
            (["--junit", directory.path], "EISDIR"),
            (["--to", "file:/nonexistent/dir/x.raw"], "ENOENT"),
            (["--to", "file:/etc/passwd/x.raw"], "ENOTDIR"),
        ]
        for (arguments, errno) in cases {
            let run = try ToolRun.run("dmabuf-pipe", ["run", "--simulated", "--frames", "100000"] + arguments)
            #expect(run.status == 64, "\(arguments): exit \(run.status)")
            #expect(run.errors.contains(errno), "\(arguments): \(run.errors)")
            #expect(run.output.isEmpty, "nothing ran")
        }
        for (arguments, errno) in cases.prefix(2) {
            let run = try ToolRun.run("dmabuf-probe", ["--simulated", "--matrix"] + arguments)
            #expect(run.status == 64 && run.errors.contains(errno) && run.output.isEmpty, "\(arguments): \(run.errors)")
        }
    }

    /// One bad file stops the suite before anything runs, and every bad file is named with its line.
    @Test func scenarioFilesAreCheckedBeforeAnyRuns() throws {
        let directory = try TemporaryDirectory()
        let files = [
            ("good.yaml", "name: good\npipeline:\n  frames: 3\n"),
            ("unknown-key.yaml", "name: a\npipeline:\n  frames: 3\n  size: 1280x720\n"),
            ("negative.yaml", "name: b\npipeline:\n  frames: -1\n"),
            ("wrong-type.yaml", "name: c\npipeline:\n  frames: many\n"),
        ]
        for (name, text) in files {
            try text.write(toFile: "\(directory.path)/\(name)", atomically: true, encoding: .utf8)
        }
        let run = try ToolRun.run(
            "dmabuf-pipe", ["run", "--simulated"] + files.map { "\(directory.path)/\($0.0)" } + [directory.path])
        #expect(run.status == 64)
        #expect(run.output.isEmpty, "no scenario ran: \(run.output)")
        #expect(run.errors.contains("unknown-key.yaml:4: pipeline.size: unknown key"), "\(run.errors)")
        #expect(run.errors.contains("negative.yaml:3: pipeline.frames -1: out of range"), "\(run.errors)")
        #expect(run.errors.contains("wrong-type.yaml:3: pipeline.frames many: must be a whole number"), "\(run.errors)")
        #expect(run.errors.contains("EISDIR"), "\(run.errors)")
    }

    /// A scenario's name is a label: `../../x` cannot write outside --dump-frames.
    @Test func scenarioNamesAreLabels() throws {
        let directory = try TemporaryDirectory()
        let scenario = "\(directory.path)/escape.yaml"
        try "name: ../../escaped\npipeline:\n  frames: 2\n".write(toFile: scenario, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory.path)/a/b", withIntermediateDirectories: true)
        let run = try ToolRun.run(
            "dmabuf-pipe", ["run", "--simulated", scenario, "--dump-frames", "\(directory.path)/a/b"])
        #expect(run.status == 0, "\(run.output)\(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/escaped"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory.path)/a/b") == ["escaped"])
    }

    /// SIGINT or SIGTERM mid-run: the report of what ran, marked interrupted; JUnit written; 130/143.
    @Test(arguments: [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")])
    func aSignalKeepsTheReport(_ signal: Int32, _ name: String) throws {
        let directory = try TemporaryDirectory()
        let junit = "\(directory.path)/report.xml"
        var streaming = false
        let run = try ToolRun.run(
            "dmabuf-pipe", ["run", "--simulated", "--verbose", "--frames", "1000000", "--junit", junit]
        ) { running in
            streaming = running.waitForErrors(containing: "frames to show")  // the run is in its frame loop
            kill(running.process.processIdentifier, signal)
        }
        #expect(streaming, "the run reached its frame loop: \(run.errors)")
        #expect(run.status == 128 + signal, "\(run.output)\(run.errors)")
        #expect(run.output.contains("stop "), "\(run.output)")
        #expect(run.output.contains("interrupted by \(name) after"), "\(run.output)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("skipped=\"1\"") && xml.contains("<skipped message=\"interrupted by \(name)"), "\(xml)")
    }

    /// A file sink writes beside its target and renames at the end: a run that fails leaves
    /// the file a user named as it was.
    @Test func aFailedFileSinkRunLeavesTheTargetAlone() throws {
        let directory = try TemporaryDirectory()
        let target = "\(directory.path)/frames.raw"
        try "precious".write(toFile: target, atomically: true, encoding: .utf8)
        let run = try ToolRun.run(
            "dmabuf-pipe", ["run", "--simulated", "--from", "/dev/video99", "--to", "file:\(target)", "--frames", "3"])
        #expect(run.status == 2, "absent source: nothing to test (\(run.output))")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["frames.raw"],
            "no temporary file left")

        let good = try ToolRun.run(
            "dmabuf-pipe", ["run", "--simulated", "--to", "file:\(target)", "--frames", "3", "--verify-every", "0"])
        #expect(good.status == 0, "\(good.output)")
        #expect(try FileManager.default.attributesOfItem(atPath: target)[.size] as? Int == 3 * 640 * 480 * 4)
    }

    /// Each exit code from the table, produced by the tool.
    @Test func exitCodesKeepTheirPromise() throws {
        #expect(try ToolRun.run("dmabuf-pipe", ["run", "--simulated", "--frames", "3"]).status == ExitStatus.ok)
        #expect(
            try ToolRun.run("dmabuf-pipe", ["run", "--simulated", "--frames", "3", "--test-pattern", "5"]).status
                == ExitStatus.failed)
        let absent = try ToolRun.run(
            "dmabuf-pipe", ["run", "--simulated", "--frames", "3", "--from", "vivid-007-vid-cap"])
        #expect(absent.status == ExitStatus.nothingToTest)
        #expect(absent.output.contains("found: vivid-000-vid-cap"), "names what exists: \(absent.output)")
        #expect(try ToolRun.run("dmabuf-pipe", ["run", "--bogus"]).status == ExitStatus.usage)
        #expect(try ToolRun.run("dmabuf-probe", ["--simulated"]).status == ExitStatus.ok)
        #expect(
            try ToolRun.run("dmabuf-probe", ["--simulated", "-d", "vivid-007-vid-cap"]).status
                == ExitStatus.nothingToTest)
        #expect(
            try ToolRun.run("dmabuf-bench", ["--simulated", "--only", "nothing-by-this-name"]).status
                == ExitStatus.usage)
        for tool in ["dmabuf-probe", "dmabuf-pipe run", "dmabuf-bench"] {
            let words = tool.split(separator: " ").map(String.init)
            let bug = try ToolRun.run(
                words[0], Array(words.dropFirst()) + ["--simulated"],
                environment: ["DMABUFKIT_INJECT_FAULT": "internal-error"])
            #expect(
                bug.status == ExitStatus.internalError && bug.errors.contains("internal error"),
                "\(tool): \(bug.status) \(bug.errors)")
        }
    }

    @Test(arguments: ["dmabuf-probe", "dmabuf-pipe", "dmabuf-bench"])
    func versionAndExitTable(_ tool: String) throws {
        let version = try ToolRun.run(tool, ["--version"])
        #expect(version.status == 0)
        #expect(version.output.trimmingCharacters(in: .whitespacesAndNewlines) == DmaBufKitVersion.string)
        let help = try ToolRun.run(tool, tool == "dmabuf-pipe" ? ["run", "--help"] : ["--help"])
        let table = ExitStatus.table.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for line in table {
            #expect(
                help.output.replacingOccurrences(of: "\n", with: " ").contains(line.prefix(30)),
                "\(tool) --help lacks: \(line)")
        }
        // Off a terminal the help is wrapped for 80 columns; the usage lines are written by hand.
        for arguments in tool == "dmabuf-pipe" ? [["--help"], ["run", "--help"]] : [["--help"]] {
            let help = try ToolRun.run(tool, arguments, environment: ["COLUMNS": "80"])
            let wide = help.output.split(separator: "\n").filter { $0.count > 80 }
            #expect(wide.isEmpty, "\(tool) \(arguments.joined(separator: " ")) is wider than 80 columns: \(wide)")
        }
    }

    /// A device that is not accessible makes a run denied (3), an absent one skipped (2); a
    /// failure outweighs both; JUnit calls a denied run a failure and an absent one skipped.
    @Test func deniedAndAbsentDevicesHaveTheirCodes() {
        var configuration = SimulatedKernel.Configuration()
        configuration.deniedPaths = ["/dev/dri/card1"]
        let logger = Logger(label: "test")
        let denied = PipelineScenario(name: "denied", pipeline: PipelineConfiguration(frames: 2)).run(
            kernel: SimulatedKernel(configuration), logger: logger)
        #expect(denied.status == .denied && denied.reason.contains("EACCES"), "\(denied.reason)")
        let absent = PipelineScenario(
            name: "absent", pipeline: PipelineConfiguration(source: "no-such-camera", frames: 2)
        ).run(kernel: SimulatedKernel(), logger: logger)
        #expect(absent.status == .skipped && absent.reason.contains("found:"), "\(absent.reason)")
        let passed = PipelineScenario(name: "passed", pipeline: PipelineConfiguration(frames: 2)).run(
            kernel: SimulatedKernel(), logger: logger)
        var black = PipelineConfiguration(frames: 2)
        black.testPattern = 5
        let failed = PipelineScenario(name: "failed", pipeline: black).run(kernel: SimulatedKernel(), logger: logger)
        #expect(ScenarioResult.exitStatus([passed]) == ExitStatus.ok)
        #expect(ScenarioResult.exitStatus([passed, absent]) == ExitStatus.nothingToTest)
        #expect(ScenarioResult.exitStatus([passed, absent, denied]) == ExitStatus.permission)
        #expect(ScenarioResult.exitStatus([passed, absent, denied, failed]) == ExitStatus.failed)
        let xml = ScenarioResult.junit([passed, absent, denied, failed])
        #expect(xml.contains("failures=\"2\" skipped=\"1\""), "\(xml)")
    }
}

extension CLITests {
    /// JUnit carries each scenario's time (it was once taken after the result was returned: 0).
    @Test func scenarioTimesAreRecorded() {
        let result = PipelineScenario(name: "timed", pipeline: PipelineConfiguration(frames: 3)).run(
            kernel: SimulatedKernel(), logger: Logger(label: "test"))
        #expect(result.passed && result.seconds > 0, "\(result.seconds)")
        #expect(!ScenarioResult.junit([result]).contains("time=\"0.000\""))
    }
}

extension CLITests {
    /// `dmabuf-probe --junit`: a test case per check and matrix cell, suites per facility, the
    /// counts those of the report's own tree; the text report still goes to standard output.
    @Test func theProbeWritesJUnit() throws {
        let directory = try TemporaryDirectory()
        let path = "\(directory.path)/probe.xml"
        let run = try ToolRun.run("dmabuf-probe", ["--simulated", "--matrix", "--junit", path])
        #expect(run.status == 0 && run.output.contains("sharing matrix"), "\(run.errors)")
        let xml = try String(contentsOfFile: path, encoding: .utf8)
        let json = try ToolRun.run("dmabuf-probe", ["--simulated", "--matrix", "--json"])
        let tests = try JSONDecoder().decode(ProbeReport.self, from: Data(json.output.utf8)).testResults
        let leaves = tests.reduce(0) { $0 + $1.counts.passed + $1.counts.failed + $1.counts.skipped }
        let skipped = tests.reduce(0) { $0 + $1.counts.skipped }
        #expect(xml.components(separatedBy: "<testcase ").count - 1 == leaves, "\(xml.prefix(600))")
        #expect(xml.components(separatedBy: "<skipped ").count - 1 == skipped && skipped > 0)
        #expect(!xml.contains("<failure") && xml.components(separatedBy: "<testsuite ").count - 1 == tests.count)
        #expect(xml.contains("name=\"export system-heap / system-heap to qbuf:vivid-000-vid-cap\""))
        let parsed = XMLParser(data: Data(xml.utf8))
        #expect(parsed.parse(), "well-formed XML: \(String(describing: parsed.parserError))")
    }
}

extension CLITests {
    /// The multi-call binary of `make dist`: by its first argument, or by the name of a link.
    @Test func theMultiCallBinaryDispatches() throws {
        #expect(try ToolRun.run("dmabuf", ["probe", "--version"]).output == DmaBufKitVersion.string + "\n")
        let help = try ToolRun.run("dmabuf", ["--help"])
        #expect(help.status == 0 && help.output.contains("dmabuf probe|pipe|bench"))
        let unknown = try ToolRun.run("dmabuf", ["frobnicate"])
        #expect(unknown.status == 64 && unknown.errors.contains("usage: dmabuf"))
        let directory = try TemporaryDirectory()
        let link = "\(directory.path)/dmabuf-pipe"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: ToolRun.path(of: "dmabuf"))
        let scratch = "\(directory.path)/out"
        #expect(try runToFile([link, "--help"], output: scratch) == 0)
        #expect(try String(contentsOfFile: scratch, encoding: .utf8).contains("USAGE: dmabuf-pipe <subcommand>"))
    }
}
