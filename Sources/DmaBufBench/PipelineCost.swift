import DmaBufKit
import Logging

/// CPU time per frame of capture → display pipelines: dmabuf-pipe's strategies and GStreamer
/// on the same nodes and settings. Each contender runs as its own process; its CPU clock
/// (user + system, all threads: `clock_getcpuclockid`) is read at two moments of the steady
/// stream, after start-up, and the difference over the frames the source delivered in between
/// (it paces them: rate × seconds) is the cost per frame. The user-space share comes from
/// /proc/PID/stat at the same moments.
public struct PipelineCost {
    public enum Contender: String, CaseIterable, Codable, Sendable {
        case export, `import`, copy, gstreamer
        /// Export with a second importer of every buffer: a V4L2 output beside the display.
        case tee
        /// Export from vivid capture into vivid output, several such pipelines at once, one
        /// process each (vkms has one CRTC, so one display pipeline per machine).
        case streams
        /// The export path in plain C with nothing per frame but its system calls
        /// (dmabuf-bench-floor): what the same syscalls cost, the floor `export` is judged by.
        case floor
        /// The export floor plus the two calls dmabuf-pipe makes per frame for its report (a
        /// CRTC sequence read, a poll that does not wait): the same system calls as `export`.
        case floorBookkeeping = "floor-bookkeeping"
        /// The import path the same way: system-heap buffers queued as DMABUF.
        case floorImport = "floor-import"
        /// Capture → stateful encoder (vicodec FWHT) → the stream to a file.
        case codec, gstreamerCodec = "gstreamer-codec"
        /// Capture → stateful encoder → stateful decoder → display.
        case codecRoundTrip = "codec-round-trip", gstreamerCodecRoundTrip = "gstreamer-codec-round-trip"

        public var title: String {
            switch self {
            case .export: "dmabuf-pipe export (EXPBUF → PRIME)"
            case .import: "dmabuf-pipe import (system heap → DMABUF QBUF + PRIME)"
            case .copy: "dmabuf-pipe copy (CPU into dumb buffers)"
            case .tee: "dmabuf-pipe export with a tee (each buffer to vkms and to a vivid output at once)"
            case .streams: "dmabuf-pipe export, vivid capture → vivid output, concurrent streams (one process each)"
            case .gstreamer: "GStreamer v4l2src io-mode=dmabuf ! kmssink"
            case .floor: "C floor of export (EXPBUF → PRIME; per frame poll, DQBUF, atomic flip, event, QBUF)"
            case .floorBookkeeping:
                "C floor of export with dmabuf-pipe's two bookkeeping calls (CRTC_GET_SEQUENCE, a poll that does not wait): its system calls"
            case .floorImport: "C floor of import (system heap → DMABUF QBUF + PRIME; the same per frame)"
            case .codec: "dmabuf-pipe encode (capture buffers by dma-buf into vicodec's FWHT encoder, stream to a file)"
            case .gstreamerCodec:
                "GStreamer v4l2src io-mode=dmabuf ! v4l2fwhtenc output-io-mode=dmabuf-import ! filesink"
            case .codecRoundTrip:
                "dmabuf-pipe round trip (capture → FWHT encoder → FWHT decoder → display, every hop by dma-buf)"
            case .gstreamerCodecRoundTrip:
                "GStreamer v4l2src io-mode=dmabuf ! v4l2fwhtenc output-io-mode=dmabuf-import ! capssetter ! "
                    + "v4l2fwhtdec capture-io-mode=dmabuf ! kmssink"
            }
        }

        /// GStreamer's side (its frame-copy log is read).
        var isGStreamer: Bool { [.gstreamer, .gstreamerCodec, .gstreamerCodecRoundTrip].contains(self) }
        /// Runs vicodec, which encodes or decodes a frame in the CPU (in the ioctl that makes a job ready).
        var isCodec: Bool { [.codec, .gstreamerCodec, .codecRoundTrip, .gstreamerCodecRoundTrip].contains(self) }
    }

    public struct Settings: Sendable {
        public var sizes: [(width: Int, height: Int)] = [(640, 480), (1280, 720), (1920, 1080)]
        /// The same rate at every size: one every vivid offers at each of them (the slowest
        /// ceiling seen: 5 fps at 1920x1080 on 6.1, where 6.12's vivid offers 30).
        public var framesPerSecond = 5
        /// The codec contenders' sizes and rate: emulated FWHT costs about 0.1 s of CPU per
        /// 640x480 frame and way, so a round trip at 5 fps, or any larger size, would saturate a
        /// CPU and compare nothing (a pipeline that falls behind is charged for fewer frames).
        public var codecSizes: [(width: Int, height: Int)] = [(640, 480)]
        public var codecFramesPerSecond = 2
        /// Start-up is over by then (set-up, buffer allocation, the first frames).
        public var settle: Duration = .seconds(5)
        /// The measured stretch of steady streaming.
        public var window: Duration = .seconds(8)
        public var runs = 3
        public var contenders = Contender.allCases
        public var source = "vivid-000-vid-cap"
        public var display = "vkms"
        /// The stateful encoder and decoder of the codec contenders (vicodec's), and where the
        /// encoder's stream goes.
        public var encoder = "stateful-encoder"
        public var decoder = "stateful-decoder"
        public var streamFile = "/tmp/dmabuf-bench-stream.fwht"
        /// The dmabuf-pipe to run.
        public var pipeProgram = "dmabuf-pipe"
        /// Capture buffers of every pipeline, and the counts export also runs with at the first
        /// size (cost and drops as the buffers in flight grow).
        public var buffers = 4
        public var scalingBuffers = [2, 4, 8, 16]
        /// The tee contender's second importer.
        public var teeOutput = "vivid-000-vid-out"
        /// The tee's capture buffers: vkms holds up to 2 and vivid's output starts streaming only
        /// with 2 queued, so with 4 or 5 the capture queue runs dry and the pipeline stalls (6 is
        /// the least that flows at 640x480 on vivid): compare it with export's 8-buffer row.
        public var teeBuffers = 8
        /// The streams contender's counts of concurrent pipelines, and the vivid instances they
        /// run on (stream k: the k-th instance's capture into its own output node; all
        /// single-planar on vb2-vmalloc, so each stream is the same work).
        public var streamCounts = [1, 2, 4]
        public var streamInstances = ["vivid-000", "vivid-003", "vivid-004", "vivid-005"]
        /// The C floor to run.
        public var floorProgram = "dmabuf-bench-floor"
        /// The heap the import contenders allocate from.
        public var heap = "/dev/dma_heap/system"
        public var gstLaunch = "gst-launch-1.0"
        public var timeout: Duration = .seconds(300)
        public init() {}
    }

    public struct Measurement: Codable, Sendable {
        public var contender: Contender
        public var title: String
        public var width: Int
        public var height: Int
        /// Capture buffers (in flight between the source and the sinks).
        public var buffers: Int
        /// Pipelines running at once; the cost is per frame of any of them (their CPU time
        /// summed over all their frames).
        public var streams: Int
        public var framesPerSecond: Int
        /// Seconds after start the window opens, and how long it lasts.
        public var settleSeconds: Double
        public var windowSeconds: Double
        /// The command line (the stream lasts past the window).
        public var command: String
        public var cpuMillisecondsPerFrame: Spread
        /// Of that, in user space (/proc/PID/stat utime, 10 ms ticks over the window).
        public var userMillisecondsPerFrame: Spread?
        /// The whole run's CPU time (start-up, the stream, tear-down).
        public var totalCPUSeconds: Spread
        /// GStreamer only: frames kmssink copied because it could not import them (its
        /// GST_PERFORMANCE "frame copy" log); 0 means every frame went zero-copy.
        public var framesCopied: Int?
        /// dmabuf-pipe only: the most frames it dropped in one run (its report's "N dropped").
        public var mostDrops: Int?
    }

    public let settings: Settings
    let logger: Logger

    public init(settings: Settings, logger: Logger) {
        (self.settings, self.logger) = (settings, logger)
    }

    /// One contender at one size with one number of capture buffers (and of streams at once).
    struct Case {
        var contender: Contender
        var size: (width: Int, height: Int)
        var buffers: Int
        var streams = 1
        var key: String {
            "\(contender.rawValue) \(size.width)x\(size.height) \(buffers) buffers"
                + (contender == .streams ? " \(streams) streams" : "")
        }
    }

    /// Every contender at each of its sizes with `buffers` capture buffers, and the scaling cases
    /// (export at the first size with each of `scalingBuffers`, the streams contender with each
    /// of `streamCounts`); all alternate within each run so drift hits all alike.
    func cases() -> [Case] {
        settings.sizes.flatMap { size in
            settings.contenders.filter { $0 != .streams && sizes($0).contains { $0 == size } }.map {
                Case(contender: $0, size: size, buffers: buffers($0))
            }
        }
            + (settings.contenders.contains(.export) ? settings.scalingBuffers : []).filter { $0 != settings.buffers }
            .map { Case(contender: .export, size: settings.sizes[0], buffers: $0) }
            + (settings.contenders.contains(.streams) ? settings.streamCounts : []).map {
                Case(contender: .streams, size: settings.sizes[0], buffers: settings.buffers, streams: $0)
            }
    }

    /// The measurements, and why any contender or case was not measured: one that fails (e.g. a
    /// pipeline that stalls) is reported and left out, the others still measured.
    public func run() throws -> (measurements: [Measurement], failed: [String]) {
        let sourcePath = try V4L2Device.nodes(kernel: LinuxKernel()).first { $0.name == settings.source }?.path
        guard let sourcePath else {
            throw KernelError(
                "open", .ENOENT, path: settings.source,
                reason: "no V4L2 node of that name (see /sys/class/video4linux/*/name)")
        }
        let displayPath = try displayPath()
        var failed: [String] = [], broken: Set<String> = []
        var samples: [String: (perFrame: [Double], user: [Double], total: [Double], copied: Int?, drops: Int?)] = [:]
        // A first run of each, unmeasured: GStreamer builds its plugin registry, files get cached.
        for contender in settings.contenders {
            // The most streams: an instance that is missing fails here, not in every run.
            let warmUp = Case(
                contender: contender, size: sizes(contender)[0], buffers: buffers(contender),
                streams: contender == .streams ? settings.streamCounts.max() ?? 1 : 1)
            do {
                _ = try measure(warmUp, frames: 2, sourcePath: sourcePath, displayPath: displayPath)
            } catch {
                failed.append("pipeline \(contender.rawValue): not measured: its first run failed: \(error)")
                broken.insert(contender.rawValue)
            }
        }
        let cases = cases().filter { !broken.contains($0.contender.rawValue) }
        for run in 0..<settings.runs {
            for item in cases where !broken.contains(item.key) {
                do {
                    let contender = item.contender
                    let outcome = try measure(
                        item, frames: frames(contender), sourcePath: sourcePath, displayPath: displayPath)
                    guard outcome.cpuSamples.count == 2 else {
                        throw KernelError(
                            "clock_getcpuclockid", .EIO, path: settings.source,
                            reason: "\(contender.rawValue) ended before its measurement window closed")
                    }
                    let frames = settings.window.seconds * Double(rate(contender) * item.streams)
                    let perFrame = (outcome.cpuSamples[1] - outcome.cpuSamples[0]) / frames
                    let key = item.key
                    samples[key, default: ([], [], [], nil, nil)].perFrame.append(perFrame * 1000)
                    if outcome.userSamples.count == 2 {
                        samples[key]!.user.append((outcome.userSamples[1] - outcome.userSamples[0]) / frames * 1000)
                    }
                    samples[key]!.total.append(outcome.cpuSeconds)
                    if let copied = outcome.framesCopied {
                        samples[key]!.copied = max(samples[key]!.copied ?? 0, copied)
                    }
                    if let drops = outcome.drops { samples[key]!.drops = max(samples[key]!.drops ?? 0, drops) }
                    logger.info(
                        "run \(run + 1)/\(settings.runs) \(key): \(String(format: "%.2f", perFrame * 1000)) ms CPU per frame"
                    )
                } catch {
                    failed.append("pipeline \(item.key): not measured: run \(run + 1) failed: \(error)")
                    broken.insert(item.key)
                }
            }
        }
        let measurements = cases.filter { !broken.contains($0.key) }.map { item in
            let sample = samples[item.key]!
            return Measurement(
                contender: item.contender, title: item.contender.title, width: item.size.width,
                height: item.size.height, buffers: item.buffers, streams: item.streams,
                framesPerSecond: rate(item.contender),
                settleSeconds: settings.settle.seconds, windowSeconds: settings.window.seconds,
                command: commands(
                    item, frames: frames(item.contender), sourcePath: sourcePath, displayPath: displayPath
                )
                .map { $0.joined(separator: " ") }.joined(separator: " & "),
                cpuMillisecondsPerFrame: Spread(sample.perFrame)!, userMillisecondsPerFrame: Spread(sample.user),
                totalCPUSeconds: Spread(sample.total)!, framesCopied: sample.copied, mostDrops: sample.drops)
        }
        return (measurements, failed)
    }

    func buffers(_ contender: Contender) -> Int { contender == .tee ? settings.teeBuffers : settings.buffers }

    /// The tee, a longer graph than export, is measured at the first size only: beside export
    /// there, it says what a second importer adds.

    func sizes(_ contender: Contender) -> [(width: Int, height: Int)] {
        contender.isCodec
            ? settings.codecSizes
            : [.tee, .streams].contains(contender) ? Array(settings.sizes.prefix(1)) : settings.sizes
    }

    func rate(_ contender: Contender) -> Int {
        contender.isCodec ? settings.codecFramesPerSecond : settings.framesPerSecond
    }

    /// Frames to ask for: the stream outlasts the window by two seconds.
    func frames(_ contender: Contender) -> Int {
        Int(((settings.settle + settings.window).seconds + 2) * Double(rate(contender)))
    }

    /// The display's node: the C floor takes a path, not a driver name.
    func displayPath() throws -> String {
        if settings.display.hasPrefix("/") { return settings.display }
        let found = try DRMDevice.drivers(kernel: LinuxKernel())
        guard let device = found.first(where: { $0.driver == settings.display }) else {
            throw KernelError(
                "open", .ENOENT, path: settings.display,
                reason: "no DRM device with that driver (found: \(found.map { "\($0.path) (\($0.driver))" })")
        }
        return device.path
    }

    /// The processes of one case: one, or one per stream.
    func commands(_ item: Case, frames: Int, sourcePath: String, displayPath: String) -> [[String]] {
        guard item.contender == .streams else {
            return [arguments(item, frames: frames, sourcePath: sourcePath, displayPath: displayPath)]
        }
        return settings.streamInstances.prefix(item.streams).map { instance in
            [
                settings.pipeProgram, "run", "--from", "\(instance)-vid-cap", "--to", "\(instance)-vid-out",
                "--strategy",
                "export", "--size", "\(item.size.width)x\(item.size.height)", "--frames", "\(frames)", "--fps",
                "\(rate(item.contender))", "--buffers", "\(item.buffers)", "--verify-every", "0", "--max-drops",
                "\(frames)", "--max-late-drops", "\(frames)",
            ]
        }
    }

    func arguments(_ item: Case, frames: Int, sourcePath: String, displayPath: String) -> [String] {
        let (contender, size, buffers) = (item.contender, item.size, item.buffers)
        switch contender {
        case .streams:
            preconditionFailure("the streams contender runs several commands: see commands(_:)")
        case .floor, .floorImport, .floorBookkeeping:
            return [settings.floorProgram] + (contender == .floorBookkeeping ? ["--bookkeeping"] : []) + [
                sourcePath, displayPath, "\(size.width)x\(size.height)", "\(rate(contender))",
                "\(buffers)", "\(frames)",
            ] + (contender == .floorImport ? [settings.heap] : [])
        case .gstreamer:
            return [
                settings.gstLaunch, "-q", "v4l2src", "device=\(sourcePath)", "io-mode=dmabuf", "num-buffers=\(frames)",
                "!",
                "video/x-raw,format=BGRx,width=\(size.width),height=\(size.height),framerate=\(rate(contender))/1",
                "!",
                "kmssink", "driver-name=\(settings.display)", "sync=false", "force-modesetting=true",
            ]
        case .gstreamerCodec:
            // vicodec encodes in the ioctl that makes a job ready (v4l2_m2m_try_run calls
            // device_run), so both contenders are charged the same FWHT work.
            return [
                settings.gstLaunch, "-q", "v4l2src", "device=\(sourcePath)", "io-mode=dmabuf", "num-buffers=\(frames)",
                "!",
                "video/x-raw,format=BGRx,width=\(size.width),height=\(size.height),framerate=\(rate(contender))/1",
                "!", "v4l2fwhtenc", "output-io-mode=dmabuf-import", "!", "filesink", "location=\(settings.streamFile)",
            ]
        case .gstreamerCodecRoundTrip:
            // The encoder labels its stream with the raw input's colorimetry (sRGB, 1:1:5:1), which
            // is not among those GStreamer 1.22 probes on vicodec's decoder: without capssetter
            // the decoder's sink caps are EMPTY and the pipeline stops not-negotiated.
            return [
                settings.gstLaunch, "-q", "v4l2src", "device=\(sourcePath)", "io-mode=dmabuf", "num-buffers=\(frames)",
                "!",
                "video/x-raw,format=BGRx,width=\(size.width),height=\(size.height),framerate=\(rate(contender))/1",
                "!", "v4l2fwhtenc", "output-io-mode=dmabuf-import", "!", "capssetter",
                "caps=video/x-fwht,colorimetry=(string)bt709", "!", "v4l2fwhtdec", "capture-io-mode=dmabuf", "!",
                "video/x-raw,format=BGRx", "!", "kmssink", "driver-name=\(settings.display)", "sync=false",
                "force-modesetting=true",
            ]
        case .codecRoundTrip:
            return [
                settings.pipeProgram, "run", "--from", settings.source, "--to", settings.display, "--encoder",
                settings.encoder, "--decoder", settings.decoder, "--strategy", "export", "--size",
                "\(size.width)x\(size.height)", "--frames", "\(frames)", "--fps", "\(rate(contender))", "--buffers",
                "\(buffers)",
                "--verify-every", "0",
            ]
        case .codec:
            return [
                settings.pipeProgram, "run", "--from", settings.source, "--to", "file:\(settings.streamFile)",
                "--encoder", settings.encoder, "--strategy", "export", "--size", "\(size.width)x\(size.height)",
                "--frames", "\(frames)", "--fps", "\(rate(contender))", "--buffers", "\(buffers)", "--verify-every",
                "0",
            ]
        case .export, .import, .copy, .tee:
            // Drops are counted, not failed on: with few buffers they are the finding.
            return [
                settings.pipeProgram, "run", "--from", settings.source, "--to", settings.display, "--strategy",
                contender == .tee ? "export" : contender.rawValue,
                "--allocator", "system-heap", "--size", "\(size.width)x\(size.height)", "--frames", "\(frames)",
                "--fps", "\(rate(contender))", "--buffers", "\(buffers)", "--verify-every", "0", "--max-drops",
                "\(frames)", "--max-late-drops", "\(frames)",
            ] + (contender == .tee ? ["--tee", settings.teeOutput] : [])
        }
    }

    /// Runs the case's processes together; CPU clocks, user time and drops are their sums.
    func measure(
        _ item: Case, frames: Int, sourcePath: String, displayPath: String
    )
        throws -> (
            cpuSeconds: Double, cpuSamples: [Double], userSamples: [Double], framesCopied: Int?, drops: Int?
        )
    {
        let contender = item.contender
        let commands = commands(item, frames: frames, sourcePath: sourcePath, displayPath: displayPath)
        let environment = contender.isGStreamer ? ["GST_DEBUG": "GST_PERFORMANCE:4", "GST_DEBUG_NO_COLOR": "1"] : [:]
        let sampleTimes = [settings.settle, settings.settle + settings.window]
        let outcomes = try ChildProcess.runTogether(
            commands, environment: environment, sampleTimes: sampleTimes, timeout: settings.timeout)
        for (command, outcome) in zip(commands, outcomes) where outcome.status != 0 {
            throw KernelError(
                command[0], .EIO, path: command.firstIndex(of: "--from").map { command[$0 + 1] } ?? settings.source,
                reason:
                    "`\(command.joined(separator: " "))` exited with \(outcome.status): \(outcome.output.suffix(1500))")
        }
        // A sample only where every process was read (one that ended early has fewer).
        func summed(_ samples: KeyPath<ChildProcess.Outcome, [Double]>) -> [Double] {
            (0..<(outcomes.map { $0[keyPath: samples].count }.min() ?? 0)).map { index in
                outcomes.map { $0[keyPath: samples][index] }.reduce(0, +)
            }
        }
        let copied =
            contender.isGStreamer
            ? outcomes[0].output.split(separator: "\n").filter { $0.contains("frame copy") }.count : nil
        let counted = outcomes.compactMap { $0.output.firstMatch(of: /, (\d+) dropped,/).flatMap { Int($0.1) } }
        let drops = commands[0][0] == settings.pipeProgram && !counted.isEmpty ? counted.reduce(0, +) : nil
        return (outcomes.map(\.cpuSeconds).reduce(0, +), summed(\.cpuSamples), summed(\.userSamples), copied, drops)
    }
}
