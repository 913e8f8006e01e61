import DmaBufKernel

/// What a pipeline run does (`dmabuf-pipe run` flags or a scenario file) and what it must
/// achieve to pass.
public struct PipelineConfiguration: Codable, Sendable, Equatable {
    /// How buffers travel from the source to the display.
    public enum Strategy: String, Codable, Sendable, CaseIterable {
        /// The capture device's own buffers, exported (EXPBUF) and imported by the display.
        case export
        /// Buffers from `allocator`, imported by both the capture queue and the display.
        case `import`
        /// The capture device's buffers copied by the CPU into the display's dumb buffers:
        /// the comparison path, always reported as copying.
        case copy
    }

    /// Where the `import` strategy's buffers come from.
    public enum Allocator: String, Codable, Sendable, CaseIterable {
        /// What `dmabuf-probe --advise` picks for the source and the sink, tried before the run
        /// (the run reports the choice); a device's own buffers make it an `export` run.
        case auto
        case systemHeap = "system-heap"
        case reservedHeap = "reserved-heap"
        case udmabuf
        /// Dumb buffers of the display device, exported with PRIME.
        case dumb
    }

    /// A V4L2 capture node by name (`vivid-000-vid-cap`), a driver (`vivid`: its first capture
    /// node) or a path; or `pattern`: the CPU draws the bars into buffers from `allocator`.
    public var source: String
    public static let patternSource = "pattern"
    /// A DRM device by driver name (`vkms`) or path; a V4L2 output node by name
    /// (`vivid-000-vid-out`); or `file:PATH`: the frames appended to a file.
    public var sink: String
    public static let fileSinkPrefix = "file:"
    public var strategy: Strategy
    public var allocator: Allocator
    public var width: Int
    public var height: Int
    public var frames: Int
    /// Capture rate asked of the source (S_PARM); nil keeps the device's.
    public var framesPerSecond: Int?
    public var buffers: Int
    /// Every n-th frame is compared with what the display wrote back; 0 turns it off.
    public var verifyEvery: Int
    /// vivid's test pattern menu index (0: 75% colour bars, 5: black); nil leaves it.
    public var testPattern: Int?
    /// A mem2mem node (`vim2m`) between source and display: RGB24 in, RGB565 out to the display.
    public var mem2mem: String?
    /// A V4L2 output node given every captured buffer too, in the same frame period as the
    /// display: the buffer goes back to the capture queue once both are done with it.
    public var tee: String?
    /// A stateful encoder (vicodec's `stateful-encoder`) the capture buffers are queued into:
    /// its compressed frames go to `decoder`, or to a file sink as the stream.
    public var encoder: String?
    /// A stateful decoder (`stateful-decoder`) taking the encoder's compressed buffers; what it
    /// decodes is shown and compared with the source by PSNR.
    public var decoder: String?
    /// The pipeline as a scenario wrote it as a graph (`stages`, `links`); nil for the
    /// single-pipeline keys. The keys above hold the topology either way.
    public var graph: PipelineGraph?
    /// Where verified frames are written as PNG: the buffer shown and what the display wrote back.
    public var dumpDirectory: String?
    /// Fault injection: at this frame the display is flipped to the framebuffer already on
    /// screen instead of the new one (a lost flip); verification of that frame must fail.
    public var injectStuckDisplay: Int?
    public var expectations: Expectations

    public struct Expectations: Codable, Sendable, Equatable {
        public var minimumFramesPerSecond: Double?
        /// Frames the pipeline may drop (it held every buffer); nil: 5% of the frames.
        public var maximumDrops: Int?
        /// Frames that may be lost while the pipeline was late (every queued buffer filled,
        /// waiting to be dequeued); nil: half the frames.
        public var maximumLateDrops: Int?
        /// Frames the source may skip while buffers wait (its thread ran late); nil: half the frames.
        public var maximumSourceDrops: Int?
        /// Every verified frame must match, show a picture (not one flat colour) and differ
        /// from the frame before it.
        public var verified: Bool
        /// With `allocator: auto`: the allocator it must choose.
        public var allocator: Allocator?
        /// With a decoder: the lowest PSNR (dB) a decoded frame may have against its source (every
        /// verify-every-th decoded frame is measured); nil: `defaultMinimumPSNR`.
        public var minimumPSNR: Double?
        /// FWHT at vicodec's default quantisation keeps vivid's bars and counters well above
        /// this; a frame decoded from another frame's data, or garbage, falls far below.
        public static let defaultMinimumPSNR = 30.0
        public init(
            minimumFramesPerSecond: Double? = nil, maximumDrops: Int? = nil, maximumLateDrops: Int? = nil,
            maximumSourceDrops: Int? = nil, verified: Bool = true
        ) {
            (self.minimumFramesPerSecond, self.maximumDrops, self.maximumSourceDrops, self.verified) = (
                minimumFramesPerSecond, maximumDrops, maximumSourceDrops, verified
            )
            self.maximumLateDrops = maximumLateDrops
        }

        /// The bounds a run has when it states none: an unexplained large loss fails it.
        public static func defaultMaximumDrops(frames: Int) -> Int { frames / 20 }
        public static func defaultMaximumLateDrops(frames: Int) -> Int { frames / 2 }
        public static func defaultMaximumSourceDrops(frames: Int) -> Int { frames / 2 }
    }

    public init(
        source: String = "vivid", sink: String = "vkms", strategy: Strategy = .export,
        allocator: Allocator = .auto,
        width: Int = 640, height: Int = 480, frames: Int = 300, framesPerSecond: Int? = 30,
        buffers: Int = PipelineConfiguration.defaultBuffers(tee: false),
        verifyEvery: Int = 1,
        testPattern: Int? = 0, mem2mem: String? = nil, dumpDirectory: String? = nil,
        expectations: Expectations = Expectations()
    ) {
        self.mem2mem = mem2mem
        (self.source, self.sink, self.strategy, self.allocator) = (source, sink, strategy, allocator)
        (self.width, self.height, self.frames, self.framesPerSecond, self.buffers) = (
            width, height, frames, framesPerSecond, buffers
        )
        (self.verifyEvery, self.testPattern, self.dumpDirectory, self.expectations) = (
            verifyEvery, testPattern, dumpDirectory, expectations
        )
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case source, sink, strategy, allocator, width, height, frames, buffers, mem2mem, tee, encoder, decoder
        case stages, links
        case framesPerSecond = "fps", verifyEvery = "verify-every", testPattern = "test-pattern", dumpDirectory =
            "dump-frames"
        case injectStuckDisplay = "inject-stuck-display"
        case expectations = "expect"
    }

    /// Scenario files may leave out anything that has a default.
    public init(from decoder: any Decoder) throws {
        let defaults = PipelineConfiguration()
        let values = try decoder.container(keyedBy: CodingKeys.self)
        source = try values.decodeIfPresent(String.self, forKey: .source) ?? defaults.source
        sink = try values.decodeIfPresent(String.self, forKey: .sink) ?? defaults.sink
        strategy = try values.decodeIfPresent(Strategy.self, forKey: .strategy) ?? defaults.strategy
        allocator = try values.decodeIfPresent(Allocator.self, forKey: .allocator) ?? defaults.allocator
        width = try values.decodeIfPresent(Int.self, forKey: .width) ?? defaults.width
        height = try values.decodeIfPresent(Int.self, forKey: .height) ?? defaults.height
        frames = try values.decodeIfPresent(Int.self, forKey: .frames) ?? defaults.frames
        framesPerSecond =
            values.contains(.framesPerSecond)
            ? try values.decodeIfPresent(Int.self, forKey: .framesPerSecond) : defaults.framesPerSecond
        let buffersGiven = try values.decodeIfPresent(Int.self, forKey: .buffers)
        buffers = buffersGiven ?? defaults.buffers
        verifyEvery = try values.decodeIfPresent(Int.self, forKey: .verifyEvery) ?? defaults.verifyEvery
        testPattern =
            values.contains(.testPattern)
            ? try values.decodeIfPresent(Int.self, forKey: .testPattern) : defaults.testPattern
        dumpDirectory = try values.decodeIfPresent(String.self, forKey: .dumpDirectory)
        mem2mem = try values.decodeIfPresent(String.self, forKey: .mem2mem)
        tee = try values.decodeIfPresent(String.self, forKey: .tee)
        encoder = try values.decodeIfPresent(String.self, forKey: .encoder)
        self.decoder = try values.decodeIfPresent(String.self, forKey: .decoder)
        injectStuckDisplay = try values.decodeIfPresent(Int.self, forKey: .injectStuckDisplay)
        expectations = try values.decodeIfPresent(Expectations.self, forKey: .expectations) ?? defaults.expectations
        if values.contains(.stages) || values.contains(.links) {
            let topologyKeys: [CodingKeys] = [.source, .sink, .mem2mem, .tee, .encoder, .decoder]
            if let both = topologyKeys.first(where: { values.contains($0) }) {
                throw ConfigurationError(
                    both.rawValue, nil, "describes the pipeline a second time: with stages and links, leave it out")
            }
            let graph = PipelineGraph(
                stages: try values.decode([PipelineGraph.Stage].self, forKey: .stages),
                links: try values.decode([String].self, forKey: .links))
            try graph.configure(&self)
            self.graph = graph
        }
        if buffersGiven == nil { buffers = Self.defaultBuffers(tee: tee != nil) }
    }

    /// Capture buffers when none are asked for. A tee's are held by three at once: the display
    /// (up to two), the output (whose driver may start only with two queued, as vivid's does)
    /// and the capture queue, which keeps two to fill; with 4, the run would stall.
    public static func defaultBuffers(tee: Bool) -> Int { tee ? 8 : 4 }
}

extension PipelineConfiguration {
    /// Every setting (the topology keys too); a graph also as its stages and links.
    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(source, forKey: .source)
        try values.encode(sink, forKey: .sink)
        try values.encode(strategy, forKey: .strategy)
        try values.encode(allocator, forKey: .allocator)
        try values.encode(width, forKey: .width)
        try values.encode(height, forKey: .height)
        try values.encode(frames, forKey: .frames)
        try values.encode(buffers, forKey: .buffers)
        try values.encodeIfPresent(framesPerSecond, forKey: .framesPerSecond)
        try values.encode(verifyEvery, forKey: .verifyEvery)
        try values.encodeIfPresent(testPattern, forKey: .testPattern)
        try values.encodeIfPresent(mem2mem, forKey: .mem2mem)
        try values.encodeIfPresent(tee, forKey: .tee)
        try values.encodeIfPresent(self.encoder, forKey: .encoder)
        try values.encodeIfPresent(decoder, forKey: .decoder)
        try values.encodeIfPresent(graph?.stages, forKey: .stages)
        try values.encodeIfPresent(graph?.links, forKey: .links)
        try values.encodeIfPresent(dumpDirectory, forKey: .dumpDirectory)
        try values.encodeIfPresent(injectStuckDisplay, forKey: .injectStuckDisplay)
        try values.encode(expectations, forKey: .expectations)
    }
}

extension PipelineConfiguration.Expectations {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case minimumFramesPerSecond = "min-fps", maximumDrops = "max-drops", maximumLateDrops = "max-late-drops",
            maximumSourceDrops = "max-source-drops", verified, allocator, minimumPSNR = "min-psnr"
    }

    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        minimumFramesPerSecond = try values.decodeIfPresent(Double.self, forKey: .minimumFramesPerSecond)
        maximumDrops = try values.decodeIfPresent(Int.self, forKey: .maximumDrops)
        maximumLateDrops = try values.decodeIfPresent(Int.self, forKey: .maximumLateDrops)
        maximumSourceDrops = try values.decodeIfPresent(Int.self, forKey: .maximumSourceDrops)
        verified = try values.decodeIfPresent(Bool.self, forKey: .verified) ?? true
        allocator = try values.decodeIfPresent(PipelineConfiguration.Allocator.self, forKey: .allocator)
        minimumPSNR = try values.decodeIfPresent(Double.self, forKey: .minimumPSNR)
    }
}
