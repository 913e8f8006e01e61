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
        /// Capture → stateful encoder (vicodec FWHT) → the stream to a file.
        case codec, gstreamerCodec = "gstreamer-codec"
        /// Capture → stateful encoder → stateful decoder → display.
        case codecRoundTrip = "codec-round-trip", gstreamerCodecRoundTrip = "gstreamer-codec-round-trip"

        public var title: String {
            switch self {
            case .export: "dmabuf-pipe export (EXPBUF → PRIME)"
            case .import: "dmabuf-pipe import (system heap → DMABUF QBUF + PRIME)"
            case .copy: "dmabuf-pipe copy (CPU into dumb buffers)"
            case .gstreamer: "GStreamer v4l2src io-mode=dmabuf ! kmssink"
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
        public var gstLaunch = "gst-launch-1.0"
        public var timeout: Duration = .seconds(300)
        public init() {}
    }

    public struct Measurement: Codable, Sendable {
        public var contender: Contender
        public var title: String
        public var width: Int
        public var height: Int
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
    }

    public let settings: Settings
    let logger: Logger

    public init(settings: Settings, logger: Logger) {
        (self.settings, self.logger) = (settings, logger)
    }

    /// Every contender at each of its sizes; contenders alternate within each run so drift hits
    /// all alike.
    public func run() throws -> [Measurement] {
        let sourcePath = try V4L2Device.nodes(kernel: LinuxKernel()).first { $0.name == settings.source }?.path
        guard let sourcePath else {
            throw KernelError(
                "open", .ENOENT, path: settings.source,
                reason: "no V4L2 node of that name (see /sys/class/video4linux/*/name)")
        }
        let cases = settings.sizes.flatMap { size in
            settings.contenders.filter { sizes($0).contains { $0 == size } }.map { (contender: $0, size: size) }
        }
        var samples: [String: (perFrame: [Double], user: [Double], total: [Double], copied: Int?)] = [:]
        // A first run of each, unmeasured: GStreamer builds its plugin registry, files get cached.
        for contender in settings.contenders {
            _ = try measure(contender, size: sizes(contender)[0], frames: 2, sourcePath: sourcePath)
        }
        for run in 0..<settings.runs {
            for (contender, size) in cases {
                let outcome = try measure(contender, size: size, frames: frames(contender), sourcePath: sourcePath)
                guard outcome.cpuSamples.count == 2 else {
                    throw KernelError(
                        "clock_getcpuclockid", .EIO, path: settings.source,
                        reason: "\(contender.rawValue) ended before its measurement window closed")
                }
                let frames = settings.window.seconds * Double(rate(contender))
                let perFrame = (outcome.cpuSamples[1] - outcome.cpuSamples[0]) / frames
                let key = "\(contender.rawValue) \(size.width)x\(size.height)"
                samples[key, default: ([], [], [], nil)].perFrame.append(perFrame * 1000)
                if outcome.userSamples.count == 2 {
                    samples[key]!.user.append((outcome.userSamples[1] - outcome.userSamples[0]) / frames * 1000)
                }
                samples[key]!.total.append(outcome.cpuSeconds)
                if let copied = outcome.framesCopied {
                    samples[key]!.copied = max(samples[key]!.copied ?? 0, copied)
                }
                logger.info(
                    "run \(run + 1)/\(settings.runs) \(key): \(String(format: "%.2f", perFrame * 1000)) ms CPU per frame"
                )
            }
        }
        return cases.map { contender, size in
            let sample = samples["\(contender.rawValue) \(size.width)x\(size.height)"]!
            return Measurement(
                contender: contender, title: contender.title, width: size.width, height: size.height,
                framesPerSecond: rate(contender), settleSeconds: settings.settle.seconds,
                windowSeconds: settings.window.seconds,
                command: arguments(contender, size: size, frames: frames(contender), sourcePath: sourcePath)
                    .joined(separator: " "),
                cpuMillisecondsPerFrame: Spread(sample.perFrame)!, userMillisecondsPerFrame: Spread(sample.user),
                totalCPUSeconds: Spread(sample.total)!, framesCopied: sample.copied)
        }
    }

    func sizes(_ contender: Contender) -> [(width: Int, height: Int)] {
        contender.isCodec ? settings.codecSizes : settings.sizes
    }

    func rate(_ contender: Contender) -> Int {
        contender.isCodec ? settings.codecFramesPerSecond : settings.framesPerSecond
    }

    /// Frames to ask for: the stream outlasts the window by two seconds.
    func frames(_ contender: Contender) -> Int {
        Int(((settings.settle + settings.window).seconds + 2) * Double(rate(contender)))
    }

    func arguments(_ contender: Contender, size: (width: Int, height: Int), frames: Int, sourcePath: String) -> [String]
    {
        switch contender {
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
                "4",
                "--verify-every", "0",
            ]
        case .codec:
            return [
                settings.pipeProgram, "run", "--from", settings.source, "--to", "file:\(settings.streamFile)",
                "--encoder", settings.encoder, "--strategy", "export", "--size", "\(size.width)x\(size.height)",
                "--frames", "\(frames)", "--fps", "\(rate(contender))", "--buffers", "4", "--verify-every",
                "0",
            ]
        case .export, .import, .copy:
            return [
                settings.pipeProgram, "run", "--from", settings.source, "--to", settings.display, "--strategy",
                contender.rawValue,
                "--allocator", "system-heap", "--size", "\(size.width)x\(size.height)", "--frames", "\(frames)",
                "--fps", "\(rate(contender))", "--buffers", "4", "--verify-every", "0",
            ]
        }
    }

    func measure(
        _ contender: Contender, size: (width: Int, height: Int), frames: Int, sourcePath: String
    )
        throws -> (cpuSeconds: Double, cpuSamples: [Double], userSamples: [Double], framesCopied: Int?)
    {
        let command = arguments(contender, size: size, frames: frames, sourcePath: sourcePath)
        let environment = contender.isGStreamer ? ["GST_DEBUG": "GST_PERFORMANCE:4", "GST_DEBUG_NO_COLOR": "1"] : [:]
        let outcome = try ChildProcess.run(
            command, environment: environment, sampleTimes: [settings.settle, settings.settle + settings.window],
            timeout: settings.timeout)
        guard outcome.status == 0 else {
            throw KernelError(
                command[0], .EIO, path: settings.source,
                reason:
                    "`\(command.joined(separator: " "))` exited with \(outcome.status): \(outcome.output.suffix(1500))")
        }
        let copied =
            contender.isGStreamer
            ? outcome.output.split(separator: "\n").filter { $0.contains("frame copy") }.count : nil
        return (outcome.cpuSeconds, outcome.cpuSamples, outcome.userSamples, copied)
    }
}
