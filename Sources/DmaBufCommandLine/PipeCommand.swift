import ArgumentParser
import DmaBufKit
import Foundation
import Logging

struct DmaBufPipeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabuf-pipe",
        abstract: "Run capture-to-display pipelines over dma-bufs and prove them by the pixels the display produced.",
        version: DmaBufKitVersion.string,
        subcommands: [PipeRun.self])
}

struct PipeRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one pipeline from flags, or the scenarios in YAML files.",
        discussion: """
            Frames come from a V4L2 capture node (vivid's, by default) in XR24 (XRGB8888) and \
            are shown full screen on the first CRTC of a KMS device (vkms) in a mode of the same \
            size. A captured buffer goes back to the capture queue only after the display has \
            flipped away from it. Every --verify-every'th frame is written back through the \
            display's writeback connector and compared with the buffer shown, pixel by pixel, \
            and the buffer shown is compared with the frame shown before it: vivid's frame counter \
            (its OSD "Counters Only") or the pattern's binary counter changes every frame, so a \
            display stuck on an old buffer cannot pass. A frame that is one flat colour (but for \
            the counter) counts as blank and fails the run.

            Drops: a skipped capture sequence number is the pipeline's drop when the driver had \
            no buffer at all at the time (the pipeline held them all: too few buffers for its \
            design), a late drop when every buffer queued may have been filled, waiting for a \
            pipeline that was slow or not scheduled (a busy machine does that), and the source's \
            when empty buffers were queued and its thread ran late. Unless told otherwise a run \
            fails with more pipeline drops than 5% of --frames, or more late or source drops than \
            half of it. A flip \
            that lands after the vblank following its commit is a late flip (the display's \
            side), reported.

            Other ends: --from pattern draws vivid's bars and a frame counter with the CPU \
            instead of capturing; --to file:PATH appends the raw frames to a file; --to \
            vivid-000-vid-out queues the frames into a V4L2 output node (the pattern's buffers by \
            import, a capture node's by export); --mem2mem vim2m puts a mem2mem stage (RGB24 in, \
            RGB565 out) between capture and display.

            A codec round trip: --encoder stateful-encoder --decoder stateful-decoder (vicodec) \
            queues the capture buffers into the encoder, its compressed buffers into the \
            decoder, and shows what that decodes; each decoded frame is compared with the frame \
            it came from by PSNR (--min-psnr, default 30 dB; every --verify-every-th frame, \
            0: none). --encoder with --to file:PATH \
            writes the compressed stream instead. Both codecs are drained at the end (the STOP \
            command, until the buffer flagged LAST). vicodec takes 640x360 to 4096x2160.

            An output node is verified through the video loopback of the capture node on the \
            same device (vivid: both go to HDMI and the loop is switched on by the control found \
            by name, "<input> Is Connected To" or "Loop Video", and back afterwards): every frame \
            captured there must be one sent, byte for byte, in order. The loop runs at its HDMI \
            timings (1280x720); --verify-every 0 runs the output unverified at any size.

            Strategies:
              export   the capture node's buffers, exported (EXPBUF) and imported by the display
              import   buffers from --allocator, imported by both sides (DMABUF queue, PRIME)
              copy     the CPU copies each frame into the display's dumb buffers (reported as copying)

            Scenario files (Tests/Scenarios/*.yaml) hold the same settings under `pipeline:` (the \
            nodes by the keys source, sink, mem2mem, tee, encoder, decoder, or as a graph: \
            `stages:`, each `{name: N, capture|pattern|mem2mem|encoder|decoder|display|output|file: \
            NODE}`, and `links:`, each `from -> to`) and \
            the expectations under `pipeline.expect:` (min-fps, max-drops, max-late-drops, max-source-drops, min-psnr, \
            verified); `inject-stuck-display: N` flips frame N to the framebuffer already on \
            screen, to prove verification catches a stale frame; a scenario \
            with `expect-failure: WORDS` passes when its run fails with a reason containing WORDS.

            Scenario files are strict: an unknown key, a wrong type or a value out of range is an \
            error naming the file and line, and every file is checked before the first runs. \
            Flags that describe a pipeline cannot be combined with scenario files. A file sink \
            with a relative path (file:frames.raw) lands in --output-dir, or in a fresh temporary \
            directory removed afterwards. On the simulated kernel frames are not paced (it \
            delivers them as fast as they are taken): --min-fps is reported as not measured there.

            Ctrl-C (SIGINT) or SIGTERM stops the run at the next frame: everything is released, \
            the report of what ran is printed (marked interrupted) and the JUnit file written; a \
            second signal exits at once.

            \(ExitStatus.table)

            Examples:
              dmabuf-pipe run --from vivid --to vkms --frames 300 --strategy export
              dmabuf-pipe run --strategy import --allocator dumb --size 1280x720 --fps 30
              dmabuf-pipe run Tests/Scenarios/*.yaml --junit pipe.xml
              dmabuf-pipe run Tests/Scenarios/*.yaml --ktap > pipe.ktap
              dmabuf-pipe run --frames 30 --verify-every 10 --dump-frames frames/
              dmabuf-pipe run --mem2mem vim2m --fps 5 --frames 30
              dmabuf-pipe run --encoder stateful-encoder --decoder stateful-decoder --fps 5
              dmabuf-pipe run --from pattern --strategy import --allocator dumb
              dmabuf-pipe run --from pattern --to vivid-000-vid-out --strategy import --verify-every 0
              dmabuf-pipe run --simulated Tests/Scenarios/export.yaml
            """)

    @Argument(help: "Scenario files to run instead of the flags' pipeline.")
    var scenarios: [String] = []

    @Option(
        name: .customLong("from"),
        help:
            "Capture node: a name (vivid-000-vid-cap), a driver (vivid) or a path; or pattern (drawn by the CPU). Default: vivid."
    )
    var source: String?

    @Option(
        name: .customLong("to"),
        help:
            "Display: a DRM driver name (vkms) or a path (/dev/dri/card1); a V4L2 output node (vivid-000-vid-out); or file:PATH to write the raw frames to a file. Default: vkms."
    )
    var sink: String?

    @Option(
        help: ArgumentHelp(
            "A mem2mem node between source and display (vim2m): RGB24 in, RGB565 out; needs --strategy export.",
            valueName: "node"))
    var mem2mem: String?

    @Option(
        help: ArgumentHelp(
            "A V4L2 output node given every captured buffer too, in the same frame period as the display (vivid-000-vid-out); needs --strategy export.",
            valueName: "node"))
    var tee: String?

    @Option(
        help: ArgumentHelp(
            "A stateful encoder the captured buffers go into (stateful-encoder); its stream goes to --decoder or to --to file:PATH.",
            valueName: "node"))
    var encoder: String?

    @Option(
        help: ArgumentHelp(
            "A stateful decoder taking --encoder's stream (stateful-decoder); what it decodes is shown and compared by PSNR.",
            valueName: "node"))
    var decoder: String?

    @Option(
        help: ArgumentHelp("The lowest PSNR a decoded frame may have against its source. Default: 30.", valueName: "dB")
    )
    var minPsnr: Double?

    @Option(help: "export, import or copy. Default: export.")
    var strategy: PipelineConfiguration.Strategy?

    @Option(
        help:
            "Where import's buffers come from: auto (what dmabuf-probe --advise picks for the source and the display, tried first), system-heap, reserved-heap, udmabuf or dumb. Default: auto."
    )
    var allocator: PipelineConfiguration.Allocator?

    @Option(
        help: "Frame size WIDTHxHEIGHT, each side 1…16384; the display needs a mode of that size. Default: 640x480.")
    var size: String?

    @Option(help: "Frames to show, 1…10000000. Default: 300.")
    var frames: Int?

    @Option(help: "Capture rate to ask of the source, 1…1000 frames per second. Default: 30.")
    var fps: Int?

    @Option(
        help:
            "Capture buffers, 2…32. Default: 4, or 8 with --tee (its display, output and capture queue each hold some)."
    )
    var buffers: Int?

    @Option(help: "Verify every n-th frame through writeback; 0 turns verification off. Default: 1.")
    var verifyEvery: Int?

    @Option(help: "vivid's test pattern menu index, 0…255 (0: 75% colour bars, 5: black). Default: 0.")
    var testPattern: Int?

    @Option(help: "Fail below this rate of frames shown, 0…1000 (frames the source itself skipped count as shown).")
    var minFps: Double?

    @Option(
        help:
            "Fail with more frames dropped by the pipeline (it held every buffer) than this; default 5% of --frames."
    )
    var maxDrops: Int?

    @Option(
        help:
            "Fail with more frames lost while the pipeline was late (queued buffers all filled) than this; default half of --frames."
    )
    var maxLateDrops: Int?

    @Option(
        help:
            "Fail with more frames skipped by a late source (empty buffers were queued) than this; default half of --frames."
    )
    var maxSourceDrops: Int?

    @Option(
        help: ArgumentHelp(
            "Write every verified frame as PNG into this directory (a subdirectory per scenario): the buffer shown and what the display wrote back.",
            valueName: "directory"))
    var dumpFrames: String?

    @Option(
        help: ArgumentHelp(
            "Where scenarios' relative file sinks write (default: a fresh temporary directory, removed afterwards).",
            valueName: "directory"))
    var outputDir: String?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(help: "Print the results as KTAP (kernel selftest format): a test per scenario, figures as diagnostics.")
    var ktap = false

    @Flag(
        name: .shortAndLong,
        help: "No progress on standard error (by default a live line on a terminal, else a line every 5 s).")
    var quiet = false

    @Option(help: "Write a JUnit XML report to this file.")
    var junit: String?

    @Flag(help: "Run on DmaBufKit's simulated kernel instead of this machine's.")
    var simulated = false

    @Option(help: "With --simulated: the kernel series the model follows (6.1 or 6.12).")
    var simulatedVersion: SimulatedVersion = .linux6_1

    @Flag(name: .shortAndLong, help: "Log each step to standard error.")
    var verbose = false

    /// The flags that describe a pipeline: with scenario files they would be ignored, so they are refused.
    private var pipelineFlagsGiven: [String] {
        let given: [(String, Bool)] = [
            ("--from", source != nil), ("--to", sink != nil), ("--mem2mem", mem2mem != nil), ("--tee", tee != nil),
            ("--encoder", encoder != nil), ("--decoder", decoder != nil), ("--min-psnr", minPsnr != nil),
            ("--strategy", strategy != nil),
            ("--allocator", allocator != nil), ("--size", size != nil), ("--frames", frames != nil),
            ("--fps", fps != nil),
            ("--buffers", buffers != nil), ("--verify-every", verifyEvery != nil),
            ("--test-pattern", testPattern != nil),
            ("--min-fps", minFps != nil), ("--max-drops", maxDrops != nil), ("--max-late-drops", maxLateDrops != nil),
            ("--max-source-drops", maxSourceDrops != nil),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// The flags' pipeline, checked by the same rules as a scenario file.
    func flagsConfiguration() throws(ConfigurationError) -> PipelineConfiguration {
        let defaults = PipelineConfiguration()
        let (width, height) =
            try size.map { text throws(ConfigurationError) in try PipelineConfiguration.parseSize(text) } ?? (
                defaults.width, defaults.height
            )
        let verifyEvery = verifyEvery ?? defaults.verifyEvery
        var configuration = PipelineConfiguration(
            source: source ?? defaults.source, sink: sink ?? defaults.sink, strategy: strategy ?? defaults.strategy,
            allocator: allocator ?? defaults.allocator, width: width, height: height, frames: frames ?? defaults.frames,
            framesPerSecond: fps ?? defaults.framesPerSecond,
            buffers: buffers ?? PipelineConfiguration.defaultBuffers(tee: tee != nil),
            verifyEvery: verifyEvery,
            testPattern: testPattern ?? defaults.testPattern, mem2mem: mem2mem, dumpDirectory: dumpFrames,
            expectations: .init(
                minimumFramesPerSecond: minFps, maximumDrops: maxDrops, maximumLateDrops: maxLateDrops,
                maximumSourceDrops: maxSourceDrops,
                verified: verifyEvery > 0))
        (configuration.tee, configuration.encoder, configuration.decoder) = (tee, encoder, decoder)
        configuration.expectations.minimumPSNR = minPsnr
        try configuration.validate()
        return configuration
    }

    func validate() throws {
        if json && ktap { throw ValidationError("--json and --ktap each are the whole output: choose one") }
        if !scenarios.isEmpty {
            let given = pipelineFlagsGiven
            if !given.isEmpty {
                throw ValidationError(
                    "\(given.joined(separator: ", ")) cannot be combined with scenario files (\(scenarios.joined(separator: ", "))): a scenario file sets the whole pipeline (a word taken for a file may be the value of a misspelt option)"
                )
            }
        } else {
            do { _ = try flagsConfiguration() } catch { throw ValidationError("\(error)") }
        }
    }

    func run() throws {
        try ToolSupport.reportingBugs(tool: "dmabuf-pipe", runScenarios)
    }

    func runScenarios() throws {
        ToolSupport.bootstrapLogging(verbose: verbose)
        let logger = Logger(label: "dmabuf-pipe")
        let runs = try plannedRuns()
        try checkOutputs(runs)
        let temporaryDirectory =
            outputDir == nil && runs.contains { $0.pipeline.sink.hasPrefix(PipelineConfiguration.fileSinkPrefix) }
            ? try makeTemporaryDirectory() : nil
        defer { if let temporaryDirectory { try? FileManager.default.removeItem(atPath: temporaryDirectory) } }

        StopSignals.install()
        let kernel = ToolSupport.kernel(simulated: simulated, version: simulatedVersion)
        let live = !quiet && isatty(STDERR_FILENO) == 1
        var results: [ScenarioResult] = []
        for scenario in runs {
            if StopSignals.pending != nil { break }
            let placed =
                scenarios.isEmpty ? scenario : scenario.placingFiles(under: outputDir ?? temporaryDirectory ?? ".")
            // Off a terminal (a farm's log) a line every few seconds, so a slow run shows it is alive.
            var nextLine = ContinuousClock.now + .seconds(5)
            let result = placed.run(kernel: kernel, logger: logger, stopRequest: { StopSignals.pending }) { progress in
                guard !quiet, live || ContinuousClock.now >= nextLine else { return }
                nextLine = ContinuousClock.now + .seconds(5)
                // Not String(format:): its first call sets up Foundation's locale inside a
                // benchmark's measuring window.
                let tenths = Int((progress.framesPerSecond * 10).rounded())
                let line =
                    "\(scenario.name): frame \(progress.frame)/\(progress.total), \(tenths / 10).\(tenths % 10) fps, \(progress.drops) dropped"
                FileHandle.standardError.write(Data((live ? "\r" + line : line + "\n").utf8))
            }
            if live { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
            results.append(result)
            if !json && !ktap { printResult(result, expectsFailure: scenario.expectFailure != nil) }
        }
        let interruption = StopSignals.pending
        if ktap {
            let notRun = runs.dropFirst(results.count).map {
                TestResult(
                    $0.name, .skipped("not run: interrupted by \(interruption.map(StopSignals.name) ?? "a signal")"))
            }
            print(TestResult.ktap(results.map(\.testResult) + notRun), terminator: "")
        }
        if let interruption, !json, !ktap {
            print("interrupted by \(StopSignals.name(interruption)): \(results.count) of \(runs.count) runs reported")
        }
        if json {
            let document = PipeOutput(
                version: DmaBufKitVersion.string, kernel: kernel.kind, paced: kernel.pacesFrames,
                interruptedBy: interruption.map(StopSignals.name), results: results)
            print(String(decoding: try ToolSupport.json(document), as: UTF8.self))
        }
        if let junit {
            do { try ScenarioResult.junit(results).write(toFile: junit, atomically: true, encoding: .utf8) } catch {
                ToolSupport.warn("dmabuf-pipe: cannot write the JUnit report \(junit): \(error)")
                throw ExitCode(ExitStatus.failed)
            }
        }
        if let interruption { throw ExitCode(ExitStatus.interrupted(by: interruption)) }
        let status = ScenarioResult.exitStatus(results)
        if status != ExitStatus.ok { throw ExitCode(status) }
    }

    /// The flags' run, or every scenario file loaded and checked before any runs.
    func plannedRuns() throws -> [PipelineScenario] {
        if scenarios.isEmpty {
            let configuration: PipelineConfiguration
            do { configuration = try flagsConfiguration() } catch { throw usage("\(error)") }
            return [
                PipelineScenario(
                    name: "\(configuration.strategy.rawValue) \(configuration.source) → \(configuration.sink)",
                    pipeline: configuration)
            ]
        }
        var runs: [PipelineScenario] = [], errors: [String] = [], labels: Set<String> = []
        for path in scenarios {
            do {
                var scenario = try PipelineScenario.load(path)
                if let dumpFrames {
                    // Labels, never paths; two scenarios of one name get their own folders.
                    var label = scenario.fileLabel, suffix = 2
                    while labels.contains(label) { label = "\(scenario.fileLabel)-\(suffix)"; suffix += 1 }
                    labels.insert(label)
                    scenario.pipeline.dumpDirectory = "\(dumpFrames)/\(label)"
                }
                runs.append(scenario)
            } catch {
                errors.append("\(error)")
            }
        }
        if !errors.isEmpty { throw usage(errors.joined(separator: "\n")) }
        return runs
    }

    /// Every output is checked before the first run: a report that cannot be written is found now, not after the run.
    func checkOutputs(_ runs: [PipelineScenario]) throws {
        do {
            if let junit { try OutputCheck.file(junit, for: "--junit \(junit)") }
            if let outputDir { try OutputCheck.directory(outputDir, for: "--output-dir") }
            for run in runs {
                let sink = run.pipeline.sink
                guard sink.hasPrefix(PipelineConfiguration.fileSinkPrefix) else { continue }
                let path = String(sink.dropFirst(PipelineConfiguration.fileSinkPrefix.count))
                // A scenario's relative path lands in the output directory, checked above.
                if path.hasPrefix("/") || scenarios.isEmpty { try OutputCheck.file(path, for: "the file sink \(path)") }
            }
        } catch { throw usage("\(error)") }
        for directory in Set(runs.compactMap(\.pipeline.dumpDirectory)) {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw usage("--dump-frames: cannot create \(directory): \((error as NSError).localizedDescription)")
            }
        }
    }

    func makeTemporaryDirectory() throws -> String {
        var template = Array("\(NSTemporaryDirectory())/dmabuf-pipe.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw usage(
                "cannot create a temporary directory for the file sink (\(Errno(rawValue: errno))); give --output-dir")
        }
        return String(cString: made)
    }

    func printResult(_ result: ScenarioResult, expectsFailure: Bool) {
        let mark =
            switch result.status {
            case .passed: "ok  "
            case .failed, .denied: "FAIL"
            case .skipped: "skip"
            case .interrupted: "stop"
            }
        print("\(mark) \(result.name)")
        if let summary = result.report?.summary {
            print("     " + summary.replacingOccurrences(of: "\n", with: "\n     "))
        }
        if !result.passed || expectsFailure { print("     \(result.reason)") }
        fflush(nil)  // each result as it comes, also into a file or a pipe (nil: every stream)
    }

    func usage(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("dmabuf-pipe: \(message)\n".utf8))
        return ExitCode(ExitStatus.usage)
    }
}

/// `dmabuf-pipe run --json`.
struct PipeOutput: Encodable {
    var tool = "dmabuf-pipe"
    var version: String
    var kernel: String
    /// False on the simulated kernel: frames come as fast as they are taken, rates are not real.
    var paced: Bool
    var interruptedBy: String?
    var results: [ScenarioResult]
}

extension PipelineConfiguration.Strategy: ExpressibleByArgument {}
extension PipelineConfiguration.Allocator: ExpressibleByArgument {}
