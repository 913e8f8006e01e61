import ArgumentParser
import DmaBufKit
import Foundation
import Logging

@main
struct DmaBufPipeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmabuf-pipe",
        abstract: "Run capture-to-display pipelines over dma-bufs and prove them by the pixels the display produced.",
        subcommands: [Run.self])
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
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
            no empty buffer at the time (the pipeline held them all), and the source's when empty \
            buffers were queued and its thread ran late. Unless told otherwise a run fails with \
            more pipeline drops than 5% of --frames or more source drops than half of it. A flip \
            that lands after the vblank following its commit is a late flip (the display's \
            side), reported.

            Other ends: --from pattern draws vivid's bars and a frame counter with the CPU \
            instead of capturing; --to file:PATH appends the raw frames to a file; --to \
            vivid-000-vid-out queues the pattern into a V4L2 output node; --mem2mem vim2m puts a \
            mem2mem stage (RGB24 in, RGB565 out) between capture and display.

            Strategies:
              export   the capture node's buffers, exported (EXPBUF) and imported by the display
              import   buffers from --allocator, imported by both sides (DMABUF queue, PRIME)
              copy     the CPU copies each frame into the display's dumb buffers (reported as copying)

            Scenario files (Tests/Scenarios/*.yaml) hold the same settings under `pipeline:` and \
            the expectations under `pipeline.expect:` (min-fps, max-drops, max-source-drops, \
            verified); `inject-stuck-display: N` flips frame N to the framebuffer already on \
            screen, to prove verification catches a stale frame; a scenario \
            with `expect-failure: WORDS` passes when its run fails with a reason containing WORDS.

            Exit status: 0 every run passed; 1 a run failed or missed its expectations; 64 bad arguments.

            Examples:
              dmabuf-pipe run --from vivid --to vkms --frames 300 --strategy export
              dmabuf-pipe run --strategy import --allocator dumb --size 1280x720 --fps 30
              dmabuf-pipe run Tests/Scenarios/*.yaml --junit pipe.xml
              dmabuf-pipe run --frames 30 --verify-every 10 --dump-frames frames/
              dmabuf-pipe run --mem2mem vim2m --fps 5 --frames 30
              dmabuf-pipe run --from pattern --strategy import --allocator dumb
              dmabuf-pipe run --from pattern --to vivid-000-vid-out --strategy import --verify-every 0
              dmabuf-pipe run --simulated Tests/Scenarios/export.yaml
            """)

    @Argument(help: "Scenario files to run instead of the flags' pipeline.")
    var scenarios: [String] = []

    @Option(name: .customLong("from"), help: "Capture node: a name (vivid-000-vid-cap), a driver (vivid) or a path; or pattern (drawn by the CPU).")
    var source = "vivid"

    @Option(name: .customLong("to"), help: "Display: a DRM driver name (vkms) or a path (/dev/dri/card1); a V4L2 output node (vivid-000-vid-out, with --from pattern); or file:PATH to append the raw frames to a file.")
    var sink = "vkms"

    @Option(help: ArgumentHelp("A mem2mem node between source and display (vim2m): RGB24 in, RGB565 out; needs --strategy export.", valueName: "node"))
    var mem2mem: String?

    @Option(help: "export, import or copy.")
    var strategy: PipelineConfiguration.Strategy = .export

    @Option(help: "Where import's buffers come from: system-heap, reserved-heap, udmabuf or dumb.")
    var allocator: PipelineConfiguration.Allocator = .systemHeap

    @Option(help: "Frame size WIDTHxHEIGHT; the display needs a mode of that size.")
    var size = "640x480"

    @Option(help: "Frames to show.")
    var frames = 300

    @Option(help: "Capture rate to ask of the source (frames per second).")
    var fps = 30

    @Option(help: "Capture buffers (at least 2).")
    var buffers = 4

    @Option(help: "Verify every n-th frame through writeback; 0 turns verification off.")
    var verifyEvery = 1

    @Option(help: "vivid's test pattern menu index (0: 75% colour bars, 5: black).")
    var testPattern = 0

    @Option(help: ArgumentHelp("Write every verified frame as PNG into this directory: the buffer shown and what the display wrote back.", valueName: "directory"))
    var dumpFrames: String?

    @Option(help: "Fail below this rate of frames shown (frames the source itself skipped count as shown).")
    var minFps: Double?

    @Option(help: "Fail with more frames dropped by the pipeline (the driver had no empty buffer) than this; default 5% of --frames.")
    var maxDrops: Int?

    @Option(help: "Fail with more frames skipped by a late source (empty buffers were queued) than this; default half of --frames.")
    var maxSourceDrops: Int?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Option(help: "Write a JUnit XML report to this file.")
    var junit: String?

    @Flag(help: "Run on DmaBufKit's simulated kernel instead of this machine's.")
    var simulated = false

    @Flag(name: .shortAndLong, help: "Log each step to standard error.")
    var verbose = false

    func validate() throws {
        guard size.split(separator: "x").compactMap({ Int($0) }).count == 2 else { throw ValidationError("--size must look like 640x480") }
        if frames < 1 { throw ValidationError("--frames must be at least 1") }
        if buffers < 2 { throw ValidationError("--buffers must be at least 2") }
        if verifyEvery < 0 { throw ValidationError("--verify-every must be 0 or more") }
    }

    func run() throws {
        let verbose = verbose
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .warning
            return handler
        }
        let logger = Logger(label: "dmabuf-pipe")
        let kernel: any Kernel = simulated ? SimulatedKernel() : LinuxKernel()
        var runs: [PipelineScenario] = []
        if scenarios.isEmpty {
            let dimensions = size.split(separator: "x").compactMap { Int($0) }
            let expectations = PipelineConfiguration.Expectations(
                minimumFramesPerSecond: minFps, maximumDrops: maxDrops, maximumSourceDrops: maxSourceDrops, verified: verifyEvery > 0)
            runs = [PipelineScenario(name: "\(strategy.rawValue) \(source) → \(sink)", pipeline: PipelineConfiguration(
                source: source, sink: sink, strategy: strategy, allocator: allocator, width: dimensions[0], height: dimensions[1],
                frames: frames, framesPerSecond: fps, buffers: buffers, verifyEvery: verifyEvery, testPattern: testPattern,
                mem2mem: mem2mem, dumpDirectory: dumpFrames, expectations: expectations))]
        } else {
            for path in scenarios {
                do {
                    var scenario = try PipelineScenario.load(path)
                    if let dumpFrames { scenario.pipeline.dumpDirectory = "\(dumpFrames)/\(scenario.name)" }
                    runs.append(scenario)
                } catch {
                    FileHandle.standardError.write(Data("dmabuf-pipe: \(error)\n".utf8))
                    throw ExitCode(64)
                }
            }
        }

        for directory in Set(runs.compactMap(\.pipeline.dumpDirectory)) {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                FileHandle.standardError.write(Data("dmabuf-pipe: cannot create \(directory): \(error)\n".utf8))
                throw ExitCode(64)
            }
        }
        let live = isatty(STDERR_FILENO) == 1
        var results: [ScenarioResult] = []
        for scenario in runs {
            let result = scenario.run(kernel: kernel, logger: logger) { progress in
                guard live else { return }
                let line = String(format: "\r%@: frame %d/%d, %.1f fps, %d dropped", scenario.name, progress.frame, progress.total, progress.framesPerSecond, progress.drops)
                FileHandle.standardError.write(Data(line.utf8))
            }
            if live { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
            results.append(result)
            if !json {
                print("\(result.passed ? "ok  " : "FAIL") \(result.name)")
                if let summary = result.report?.summary { print("     " + summary.replacingOccurrences(of: "\n", with: "\n     ")) }
                if !result.passed || scenario.expectFailure != nil { print("     \(result.reason)") }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        }
        if let junit {
            do { try ScenarioResult.junit(results).write(toFile: junit, atomically: true, encoding: .utf8) } catch {
                FileHandle.standardError.write(Data("dmabuf-pipe: cannot write \(junit): \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}

extension PipelineConfiguration.Strategy: ExpressibleByArgument {}
extension PipelineConfiguration.Allocator: ExpressibleByArgument {}
