import ArgumentParser
import DmaBufBench
import DmaBufKit
import Foundation
import Logging

struct DmaBufBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabuf-bench",
        abstract: "Measure DmaBufKit's cost against a C reference and GStreamer, side by side in one run.",
        discussion: """
            Loops: the same ioctl loops run by a C reference (plain ioctl(2), libdrm for PRIME) \
            and by DmaBufKit's typed API, on the same descriptors, alternating run by run; each \
            run gives one Swift/C ratio of thread CPU time:
              heap alloc+close      DMA_HEAP_IOCTL_ALLOC + close, 4 KiB to 32 MiB
              udmabuf create+close  UDMABUF_CREATE + close, 1 to 32 MiB (µs per MiB)
              SYNC pair             SYNC_START + SYNC_END, mapped 1 MiB heap buffer
              V4L2 DQBUF+QBUF       poll, DQBUF, QBUF on vivid (it paces: CPU only)
              PRIME import+close    FD_TO_HANDLE + GEM_CLOSE of a heap buffer, vkms
            Each loop is also timed through its lower layers only, in the same runs: Swift calling \
            the C shim (or libdrm) directly, the concrete LinuxKernel, the Kernel interface (any \
            Kernel); the typed API adds the owners. Each layer's ratio to C says what it costs.

            Pipelines (--pipelines): CPU time per frame (user + system, all threads) of vivid → \
            vkms at 640x480, 1280x720 and 1920x1080 at 5 fps (a rate vivid offers at all three sizes \
            on every kernel tried) for dmabuf-pipe's export, import \
            and copy strategies and for gst-launch-1.0 v4l2src io-mode=dmabuf ! kmssink, each its \
            own process: its CPU clock is read 5 s after start and 8 s later, and the difference \
            is divided by the 40 frames vivid delivered in between (start-up does not count). \
            The C floor (dmabuf-bench-floor, beside this program) does export's and import's \
            per-frame system calls and nothing else: poll, DQBUF, an atomic flip, the flip event, \
            QBUF. Export also runs with 2, 4, 8 and 16 buffers at 640x480 (cost and drops as the \
            buffers in flight grow), and with a tee to vivid-000-vid-out (a second importer). \
            The codec pipelines (vivid → vicodec's FWHT encoder → a file, and the round trip \
            through its decoder to vkms, ours and GStreamer's) run at 640x480 and 2 fps: \
            emulated FWHT costs about 0.1 s of CPU per frame and way. The user-space share \
            comes from /proc/PID/stat at the same moments.

            The clock: before measuring, the thread CPU clock is checked (its step, and 200 busy \
            loops of 200 µs each read against CLOCK_MONOTONIC) and printed with the results; a \
            clock that stalls, lags or jumps (a TCG guest on hpet) stops the run with exit 1 \
            rather than give a ratio. Every run is sized to take at least 100 steps of the clock \
            and 1 ms of CPU, and a run whose reading the clock cannot have measured stops it too.

            Timings on shared machines are noisy: read the ratios, not the absolute figures. \
            `make bench` runs all of it in the test VM and writes .build/bench/.

            Ctrl-C (SIGINT) or SIGTERM stops at the next run and prints what was measured, \
            marked interrupted; a second signal exits at once.

            \(ExitStatus.table)
              (bench: 0 when everything asked for ran, whatever the ratios, unless --gate found a loop
               past its bound: 1; 2 when no loop could run here)

            Examples:
              dmabuf-bench                          # the loops on this machine's kernel
              dmabuf-bench --pipelines --json       # and the pipelines, as JSON
              dmabuf-bench --simulated --runs 3     # the Swift side alone, on the simulated kernel
              dmabuf-bench --rounds-scale 0.1       # a quick look
              dmabuf-bench --only V4L2 --only PRIME # some loops only
              dmabuf-bench --ktap                   # a KTAP test per loop and target
              dmabuf-bench --gate Tests/VM/bench-bounds.txt --no-layers --rounds-scale 0.3
                                                    # the regression gate CI runs in the VM
            """,
        version: DmaBufKitVersion.string)

    @Option(help: "Runs per loop and side (each gives one Swift/C ratio).")
    var runs = 7

    @Option(help: "Scale every loop's rounds (0.1 for a quick look).")
    var roundsScale = 1.0

    @Option(
        help: ArgumentHelp(
            "Only the loops whose name contains this (heap, udmabuf, SYNC, V4L2, PRIME); repeatable.", valueName: "name"
        ))
    var only: [String] = []

    @Flag(
        inversion: .prefixedNo,
        help: "Also time each loop through its lower layers only (the shim, LinuxKernel, any Kernel): what each adds.")
    var layers = true

    @Option(
        help: ArgumentHelp(
            "Fail (exit 1) when a loop's Swift/C median passes the bound recorded for it in this file by more than its noise (`loop | parameter | bound | noise` per line; Tests/VM/bench-bounds.txt).",
            valueName: "path"))
    var gate: String?

    @Option(
        help: ArgumentHelp(
            "Testing the gate: the Swift side burns this many percent more CPU than its loop took.",
            valueName: "percent"))
    var injectSlowdown = 0.0

    @Flag(help: "Also measure the pipelines' CPU per frame (needs vivid, vkms, dmabuf-pipe and gst-launch-1.0).")
    var pipelines = false

    @Flag(help: "Only the pipelines, not the loops.")
    var pipelinesOnly = false

    @Option(help: "Runs of each pipeline at each size.")
    var pipelineRuns = 3

    @Option(
        help: ArgumentHelp(
            "Only these pipelines (\(PipelineCost.Contender.allCases.map(\.rawValue).joined(separator: ", "))); repeatable.",
            valueName: "name"))
    var pipeline: [PipelineCost.Contender] = []

    @Option(help: ArgumentHelp("The dmabuf-pipe to measure (default: the one beside this program).", valueName: "path"))
    var pipeProgram: String?

    @Flag(help: "Run the loops on DmaBufKit's simulated kernel (Swift side only: there is no C to compare).")
    var simulated = false

    @Option(help: "With --simulated: the kernel series the model follows (6.1 or 6.12).")
    var simulatedVersion: SimulatedVersion = .linux6_1

    @Flag(help: "Print the report as JSON (the text report is Markdown tables).")
    var json = false

    @Flag(help: "Print the report as KTAP (kernel selftest format): a test per loop, pipeline and target.")
    var ktap = false

    @Option(help: ArgumentHelp("Also write the JSON report to this file.", valueName: "path"))
    var saveJson: String?

    @Flag(
        help:
            "Only check the clock (print its step and how busy loops read) and exit: 0 when it can time a benchmark, 1 when not."
    )
    var checkClock = false

    @Flag(name: .shortAndLong, help: "Log each measurement to standard error.")
    var verbose = false

    func validate() throws {
        if json && ktap { throw ValidationError("--json and --ktap each are the whole output: choose one") }
        if runs < 1 || pipelineRuns < 1 { throw ValidationError("--runs and --pipeline-runs must be at least 1") }
        if !(roundsScale > 0) { throw ValidationError("--rounds-scale must be above 0") }
        if simulated && (pipelines || pipelinesOnly) {
            throw ValidationError("--pipelines needs the real kernel: drop --simulated")
        }
        if !(0...1000).contains(injectSlowdown) {
            throw ValidationError("--inject-slowdown \(injectSlowdown): a percentage from 0 to 1000")
        }
        if gate != nil && (pipelinesOnly || simulated) {
            throw ValidationError("--gate judges the loops against C: drop --pipelines-only and --simulated")
        }
        if !roundsScale.isFinite || roundsScale > 1000 {
            throw ValidationError("--rounds-scale \(roundsScale): out of range, above 0 and at most 1000")
        }
        if runs > 1000 || pipelineRuns > 100 {
            throw ValidationError("--runs at most 1000, --pipeline-runs at most 100")
        }
        if let saveJson {
            // Found now, not after a run of many minutes.
            do { try OutputCheck.file(saveJson, for: "--save-json \(saveJson)") } catch {
                throw ValidationError("\(error)")
            }
        }
        for name in only
        where !LoopBenchmarks.loopNames.contains(where: { $0.lowercased().contains(name.lowercased()) }) {
            throw ValidationError(
                "--only \(name) matches no loop (loops: \(LoopBenchmarks.loopNames.joined(separator: ", ")))")
        }
    }

    func run() throws {
        try ToolSupport.reportingBugs(tool: "dmabuf-bench", bench)
    }

    func bench() throws {
        ToolSupport.bootstrapLogging(verbose: verbose, level: .info)
        let logger = Logger(label: "dmabuf-bench")
        let kernel = ToolSupport.kernel(simulated: simulated, version: simulatedVersion)
        StopSignals.install()
        let clock = ClockCheck.measure()
        logger.info("\(clock.summary)")
        if checkClock {
            print(clock.summary)
            if clock.problem != nil { throw ExitCode(1) }
            return
        }
        do {
            if let problem = clock.problem {
                throw BenchmarkError(
                    "this machine's clock cannot time a benchmark: \(problem). In a VM, boot the guest with tsc=reliable (or use KVM)"
                )
            }
            // The bounds are read before anything is measured: a bad file fails at once.
            let bounds = try gate.map { path in
                try BenchGate(text: try LinuxKernel().readFile(path), source: path)
            }
            var loops: [LoopMeasurement] = [], skipped: [String] = []
            if !pipelinesOnly {
                var settings = LoopBenchmarks.Settings()
                (settings.runs, settings.roundsScale, settings.only) = (runs, roundsScale, only)
                (settings.layers, settings.injectedSlowdownPercent) = (layers, injectSlowdown)
                var benchmarks = LoopBenchmarks(kernel: kernel, settings: settings, clock: clock, logger: logger)
                benchmarks.stopRequest = { StopSignals.pending }
                (loops, skipped) = try benchmarks.run()
            }
            var costs: [PipelineCost.Measurement] = [], pipelinesFailed: [String] = []
            if (pipelines || pipelinesOnly) && StopSignals.pending == nil {
                var settings = PipelineCost.Settings()
                settings.runs = pipelineRuns
                if !pipeline.isEmpty { settings.contenders = pipeline }
                settings.pipeProgram = pipeProgram ?? Self.sibling("dmabuf-pipe")
                settings.floorProgram = Self.sibling("dmabuf-bench-floor")
                (costs, pipelinesFailed) = try PipelineCost(settings: settings, logger: logger).run()
            }
            var report = BenchReport(
                kernel: kernel, clock: clock, loops: loops, skipped: skipped + pipelinesFailed, pipelines: costs)
            report.interruptedBy = StopSignals.pending.map(StopSignals.name)
            let encoded = try ToolSupport.json(report)
            if let saveJson { try encoded.write(to: URL(fileURLWithPath: saveJson)) }
            if ktap {
                print(TestResult.ktap(report.testResults), terminator: "")
            } else {
                print(json ? String(decoding: encoded, as: UTF8.self) : report.text)
            }
            if let signal = StopSignals.pending { throw ExitCode(ExitStatus.interrupted(by: signal)) }
            if loops.isEmpty && costs.isEmpty { throw ExitCode(ExitStatus.nothingToTest) }
            // The report is out; a pipeline that could not be measured still fails the run.
            if !pipelinesFailed.isEmpty {
                ToolSupport.warn(pipelinesFailed.map { "dmabuf-bench: \($0)" }.joined(separator: "\n"))
                throw ExitCode(ExitStatus.failed)
            }
            if let bounds {
                let verdicts = bounds.judge(loops)
                ToolSupport.warn(
                    (["gate (\(gate!)):"] + verdicts.map { "  \($0.line)" }).joined(separator: "\n"))
                if !verdicts.allSatisfy(\.passed) { throw ExitCode(ExitStatus.failed) }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch let bug as InternalError {
            throw bug
        } catch {
            ToolSupport.warn("dmabuf-bench: \(error)")
            throw ExitCode(ExitStatus.failed)
        }
    }

    /// A program installed beside this one.
    static func sibling(_ name: String) -> String {
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
extension PipelineCost.Contender: ExpressibleByArgument {}
