import DmaBufKit

#if canImport(Glibc)
    import Glibc
#endif

/// Everything one `dmabuf-bench` run measured, and how it compares with the targets.
public struct BenchReport: Codable, Sendable {
    public var schemaVersion = 2
    /// `linux` or `simulated`, and `uname -r`.
    public var kernel: String
    public var release: String
    /// The clock the figures were timed by, as checked before measuring.
    public var clock: ClockCheck
    public var loops: [LoopMeasurement]
    /// Loops not run because their device is missing, with the reason.
    public var skipped: [String]
    /// The DmaBufKit version that measured.
    public var version = DmaBufKitVersion.string
    /// The signal that ended the run early; the report holds what finished before it.
    public var interruptedBy: String?
    public var pipelines: [PipelineCost.Measurement]
    public var targets: [Target]

    public struct Target: Codable, Sendable {
        public var goal: String
        public var met: Bool
        /// The figures behind the verdict (and by how much it was missed).
        public var detail: String
    }

    public static let ratioTarget = 1.05
    /// 1920x1080 within this factor of 640x480.
    public static let flatnessTarget = 1.2
    /// A zero-copy pipeline against the C floor doing only its system calls: at most this factor.
    public static let floorTarget = 1.3
    /// "Well below the copy path": at most this fraction of it.
    public static let belowCopyTarget = 0.5

    public init(
        kernel: any Kernel, clock: ClockCheck, loops: [LoopMeasurement], skipped: [String],
        pipelines: [PipelineCost.Measurement]
    ) {
        (self.kernel, self.clock) = (kernel.kind, clock)
        release = (try? kernel.kernelRelease()) ?? "unknown"
        (self.loops, self.skipped, self.pipelines) = (loops, skipped, pipelines)
        targets = Self.judge(loops: loops, pipelines: pipelines)
    }

    static func judge(loops: [LoopMeasurement], pipelines: [PipelineCost.Measurement]) -> [Target] {
        var targets: [Target] = []
        let compared = loops.filter { $0.ratio != nil }
        if !compared.isEmpty {
            let misses = compared.filter { $0.ratio!.median > ratioTarget }
            targets.append(
                Target(
                    goal: "Swift/C ≤ \(ratioTarget) (median) on every ioctl loop", met: misses.isEmpty,
                    detail: misses.isEmpty
                        ? "highest \(format(compared.map { $0.ratio!.median }.max()!, 3))"
                        : "missed: "
                            + misses.map {
                                "\($0.loop) \($0.parameter) \(format($0.ratio!.median, 3)) (+\(format(($0.ratio!.median - 1) * 100, 1))%)"
                            }.joined(separator: "; ")))
        }
        // With the pipelines' usual buffer count (the first measured of each contender); the
        // other counts are the scaling rows.
        func cost(_ contender: PipelineCost.Contender, _ width: Int) -> Double? {
            let usual = pipelines.first { $0.contender == contender }?.buffers
            return pipelines.first { $0.contender == contender && $0.width == width && $0.buffers == usual }?
                .cpuMillisecondsPerFrame.median
        }
        for zeroCopy in [PipelineCost.Contender.export, .import] {
            if let small = cost(zeroCopy, 640), let large = cost(zeroCopy, 1920) {
                let factor = large / max(small, 1e-9)
                targets.append(
                    Target(
                        goal: "\(zeroCopy.rawValue): CPU per frame at 1920x1080 within \(flatnessTarget)× of 640x480",
                        met: factor <= flatnessTarget,
                        detail: "\(format(large, 2)) ms vs \(format(small, 2)) ms: \(format(factor, 2))×"))
            }
            if let mine = cost(zeroCopy, 1920), let copying = cost(.copy, 1920) {
                targets.append(
                    Target(
                        goal:
                            "\(zeroCopy.rawValue): CPU per frame at 1920x1080 at most \(belowCopyTarget)× the copy path's",
                        met: mine <= copying * belowCopyTarget,
                        detail:
                            "\(format(mine, 2)) ms vs \(format(copying, 2)) ms: \(format(mine / max(copying, 1e-9), 3))×"
                    ))
            }
        }
        // Each zero-copy strategy against its C floor.
        for (ours, floor) in [
            (PipelineCost.Contender.export, PipelineCost.Contender.floor), (.export, .floorBookkeeping),
            (.import, .floorImport),
        ] {
            for width in [640, 1280, 1920] {
                guard let mine = cost(ours, width), let bare = cost(floor, width) else { continue }
                let which = floor == .floorBookkeeping ? "the C floor's with the same system calls" : "the C floor's"
                targets.append(
                    Target(
                        goal: "\(ours.rawValue): CPU per frame ≤ \(floorTarget)× \(which) at width \(width)",
                        met: mine <= bare * floorTarget,
                        detail: "\(format(mine, 2)) ms vs \(format(bare, 2)) ms: \(format(mine / max(bare, 1e-9), 2))×")
                )
            }
        }
        // Each of ours against the same pipeline in GStreamer.
        let peers: [(PipelineCost.Contender, PipelineCost.Contender, String)] = [
            (.export, .gstreamer, "export"), (.codec, .gstreamerCodec, "encode to a file"),
            (.codecRoundTrip, .gstreamerCodecRoundTrip, "codec round trip"),
        ]
        for (ours, theirs, name) in peers {
            for width in [640, 1280, 1920] {
                guard let mine = cost(ours, width), let peer = cost(theirs, width) else { continue }
                targets.append(
                    Target(
                        goal: "\(name): CPU per frame ≤ GStreamer's at width \(width)", met: mine <= peer,
                        detail: "\(format(mine, 2)) ms vs \(format(peer, 2)) ms: \(format(mine / max(peer, 1e-9), 2))×")
                )
            }
        }
        return targets
    }

    /// Markdown tables, as the README shows them.
    public var text: String {
        var lines = ["Kernel: \(kernel) \(release)", "", "Clock: \(clock.summary)", ""]
        if !loops.isEmpty {
            lines += [
                "| loop | variant | rounds × runs | C ns/round | Swift ns/round | Swift/C min / median / max | µs per MiB (C / Swift) |",
                "|---|---|---|---|---|---|---|",
            ]
            for loop in loops {
                let ratio =
                    loop.ratio.map {
                        "\(Self.format($0.minimum, 3)) / **\(Self.format($0.median, 3))** / \(Self.format($0.maximum, 3))"
                    } ?? "-"
                let perMiB =
                    loop.swiftMicrosecondsPerMiB.map { swift in
                        "\(loop.cMicrosecondsPerMiB.map { Self.format($0, 1) } ?? "-") / \(Self.format(swift, 1))"
                    } ?? ""
                lines.append(
                    "| \(loop.loop) | \(loop.parameter) | \(loop.rounds) × \(loop.runs) | \(loop.cNanosecondsPerRound.map { Self.format($0.median, 0) } ?? "-") "
                        + "| \(Self.format(loop.swiftNanosecondsPerRound.median, 0)) | \(ratio) | \(perMiB) |")
                // The same loop through the lower layers only: what each adds on the way up.
                for layer in loop.layers {
                    let ratio =
                        layer.ratio.map {
                            "\(Self.format($0.minimum, 3)) / \(Self.format($0.median, 3)) / \(Self.format($0.maximum, 3))"
                        } ?? "-"
                    lines.append(
                        "| ↳ through \(layer.name) only | | | | \(Self.format(layer.nanosecondsPerRound.median, 0)) | \(ratio) | |"
                    )
                }
            }
            lines.append("")
        }
        for reason in skipped { lines.append("skipped: \(reason)") }
        if let interruptedBy { lines.append("INTERRUPTED by \(interruptedBy): a partial report") }
        if !pipelines.isEmpty {
            let first = pipelines[0]
            lines += [
                "CPU per frame (user + system, all threads; user space alone from /proc/PID/stat) over "
                    + "\(Self.format(first.windowSeconds, 0)) s of steady streaming from \(Self.format(first.settleSeconds, 0)) s after start:",
                "",
                "| size | fps | buffers | pipeline | ms per frame min / median / max | of which user (median) | whole run, CPU s (median) | most drops |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for measurement in pipelines {
                let cost = measurement.cpuMillisecondsPerFrame
                var title = measurement.title
                if measurement.contender == .streams { title += ": \(measurement.streams)" }
                if let copied = measurement.framesCopied, copied > 0 {
                    title += " (\(copied) frames copied by kmssink)"
                }
                lines.append(
                    "| \(measurement.width)x\(measurement.height) | \(measurement.framesPerSecond) | \(measurement.buffers) | \(title) "
                        + "| \(Self.format(cost.minimum, 2)) / **\(Self.format(cost.median, 2))** / \(Self.format(cost.maximum, 2)) "
                        + "| \(measurement.userMillisecondsPerFrame.map { Self.format($0.median, 2) } ?? "-") "
                        + "| \(Self.format(measurement.totalCPUSeconds.median, 2)) | \(measurement.mostDrops.map(String.init) ?? "-") |"
                )
            }
            lines.append("")
            if let slope = bufferSlope {
                lines += [
                    "Export at \(slope.size) as the buffers in flight grow (\(slope.counts)): \(Self.format(slope.millisecondsPerBuffer * 1000, 1)) µs of CPU per frame more for each buffer (least squares over the medians).",
                    "",
                ]
            }
            if let slope = streamSlope {
                lines += [
                    "Concurrent streams at \(slope.size) (\(slope.counts)): \(Self.format(slope.millisecondsPerStream * 1000, 1)) µs of CPU per frame more for each stream added (least squares over the medians).",
                    "",
                ]
            }
        }
        if !targets.isEmpty {
            lines += ["| target | met | figures |", "|---|---|---|"]
            for target in targets {
                lines.append("| \(target.goal) | \(target.met ? "yes" : "**no**") | \(target.detail) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The least-squares slope of export's median CPU per frame over its buffer counts, at the
    /// size it was measured with several (nil with fewer than two).
    public var bufferSlope: (size: String, counts: String, millisecondsPerBuffer: Double)? {
        let rows = pipelines.filter { $0.contender == .export }
        guard let first = rows.first(where: { row in rows.filter { $0.width == row.width }.count > 1 }) else {
            return nil
        }
        let points = rows.filter { $0.width == first.width && $0.height == first.height }
            .map { (x: Double($0.buffers), y: $0.cpuMillisecondsPerFrame.median) }.sorted { $0.x < $1.x }
        return Self.slope(points).map {
            ("\(first.width)x\(first.height)", points.map { "\(Int($0.x))" }.joined(separator: ", ") + " buffers", $0)
        }
    }

    /// The same over the streams contender's counts of concurrent pipelines.
    public var streamSlope: (size: String, counts: String, millisecondsPerStream: Double)? {
        let rows = pipelines.filter { $0.contender == .streams }
        guard let first = rows.first else { return nil }
        let points = rows.map { (x: Double($0.streams), y: $0.cpuMillisecondsPerFrame.median) }.sorted { $0.x < $1.x }
        return Self.slope(points).map {
            ("\(first.width)x\(first.height)", points.map { "\(Int($0.x))" }.joined(separator: ", ") + " streams", $0)
        }
    }

    /// Least squares; nil when the points do not spread along x.
    static func slope(_ points: [(x: Double, y: Double)]) -> Double? {
        guard !points.isEmpty else { return nil }
        let meanX = points.map(\.x).reduce(0, +) / Double(points.count)
        let meanY = points.map(\.y).reduce(0, +) / Double(points.count)
        let spread = points.map { ($0.x - meanX) * ($0.x - meanX) }.reduce(0, +)
        guard spread > 0 else { return nil }
        return points.map { ($0.x - meanX) * ($0.y - meanY) }.reduce(0, +) / spread
    }

    static func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
}
