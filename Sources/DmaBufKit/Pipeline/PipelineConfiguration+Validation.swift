import DmaBufKernel

/// The one place a pipeline's settings are checked, for flags and scenario files alike: every
/// number in range (so that no conversion to the kernel's 32-bit fields can trap) and no two
/// settings in conflict. Devices answer for their own limits (a size vivid cannot capture is
/// the kernel's EINVAL, reported); these bounds only keep values inside what any run can mean.
extension PipelineConfiguration {
    public static let sizeRange = 1...16384
    public static let framesRange = 1...10_000_000
    public static let framesPerSecondRange = 1...1000
    /// vb2 holds at most VB2_MAX_FRAME (32) buffers per queue (include/media/videobuf2-core.h).
    public static let buffersRange = 2...32
    public static let testPatternRange = 0...255

    /// Throws the first setting that no run can be made of, naming it, its value and what is allowed.
    public func validate() throws(ConfigurationError) {
        func check(
            _ field: String, _ value: Int, _ range: ClosedRange<Int>, _ meaning: String = ""
        ) throws(ConfigurationError) {
            if !range.contains(value) {
                throw ConfigurationError(
                    field, "\(value)", "out of range: \(range.lowerBound)…\(range.upperBound)\(meaning)")
            }
        }
        if source.isEmpty {
            throw ConfigurationError("source", "\"\"", "names nothing: a node name, a driver, a path or pattern")
        }
        if sink.isEmpty {
            throw ConfigurationError(
                "sink", "\"\"", "names nothing: a DRM driver or path, a V4L2 output node or file:PATH")
        }
        try check("width", width, Self.sizeRange)
        try check("height", height, Self.sizeRange)
        try check("frames", frames, Self.framesRange)
        if let framesPerSecond { try check("fps", framesPerSecond, Self.framesPerSecondRange) }
        try check("buffers", buffers, Self.buffersRange, " (vb2 queues hold at most 32)")
        try check("verify-every", verifyEvery, 0...frames, " (0 turns verification off; at most the frames)")
        if let testPattern { try check("test-pattern", testPattern, Self.testPatternRange) }
        if let injectStuckDisplay {
            try check("inject-stuck-display", injectStuckDisplay, 1...max(1, frames - 1), " (a frame after the first)")
            if verifyEvery == 0 {
                throw ConfigurationError(
                    "inject-stuck-display", "\(injectStuckDisplay)", "needs verification on (verify-every above 0)")
            }
        }
        if let directory = dumpDirectory, directory.isEmpty {
            throw ConfigurationError("dump-frames", "\"\"", "names no directory")
        }
        if let minimum = expectations.minimumFramesPerSecond, !(minimum.isFinite && minimum >= 0 && minimum <= 1000) {
            throw ConfigurationError("expect.min-fps", "\(minimum)", "out of range: 0…1000 frames per second")
        }
        if let maximum = expectations.maximumDrops { try check("expect.max-drops", maximum, 0...frames) }
        // Late and source drops are gaps in the capture sequence: they can outnumber the frames.
        if let maximum = expectations.maximumLateDrops {
            try check("expect.max-late-drops", maximum, 0...Self.framesRange.upperBound)
        }
        if let maximum = expectations.maximumSourceDrops {
            try check("expect.max-source-drops", maximum, 0...Self.framesRange.upperBound)
        }

        // Settings that exclude each other.
        let toFile = sink.hasPrefix(Self.fileSinkPrefix)
        if toFile && sink.count == Self.fileSinkPrefix.count {
            throw ConfigurationError("sink", sink, "names no file: file:PATH")
        }
        if let mem2mem {
            if mem2mem.isEmpty { throw ConfigurationError("mem2mem", "\"\"", "names no node") }
            if strategy != .export {
                throw ConfigurationError(
                    "strategy", strategy.rawValue, "a mem2mem stage passes buffers along by export: use strategy export"
                )
            }
            if source == Self.patternSource {
                throw ConfigurationError(
                    "mem2mem", mem2mem, "takes its frames from a capture node, not the pattern source")
            }
            if toFile { throw ConfigurationError("mem2mem", mem2mem, "runs into a display, not a file sink") }
        }
        if expectations.allocator != nil && (allocator != .auto || strategy != .import) {
            throw ConfigurationError(
                "expect.allocator", expectations.allocator!.rawValue,
                "checks the choice of allocator auto with strategy import")
        }
        if let tee {
            if tee.isEmpty { throw ConfigurationError("tee", "\"\"", "names no node") }
            if strategy != .export {
                throw ConfigurationError(
                    "strategy", strategy.rawValue,
                    "a tee hands the capture buffers to both sinks by export: use strategy export")
            }
            if source == Self.patternSource {
                throw ConfigurationError("tee", tee, "takes its frames from a capture node, not the pattern source")
            }
            if toFile || mem2mem != nil {
                throw ConfigurationError("tee", tee, "runs beside a display, without a mem2mem stage or a file sink")
            }
        }
        if let encoder {
            if encoder.isEmpty { throw ConfigurationError("encoder", "\"\"", "names no node") }
            if strategy != .export {
                throw ConfigurationError(
                    "strategy", strategy.rawValue, "an encoder imports the capture buffers: use strategy export")
            }
            if source == Self.patternSource {
                throw ConfigurationError(
                    "encoder", encoder, "takes its frames from a capture node, not the pattern source")
            }
            if mem2mem != nil || tee != nil {
                throw ConfigurationError("encoder", encoder, "runs without a mem2mem stage or a tee")
            }
            if toFile && decoder != nil {
                throw ConfigurationError(
                    "decoder", decoder!, "decodes for a display; a file sink takes the encoder's stream")
            }
            if !toFile && decoder == nil {
                throw ConfigurationError(
                    "encoder", encoder, "needs a decoder to show its frames, or a file sink (file:PATH) for its stream")
            }
        } else if let decoder {
            throw ConfigurationError("decoder", decoder, "decodes what an encoder made: name the encoder too")
        }
        if let minimum = expectations.minimumPSNR, !(0...100).contains(minimum) {
            throw ConfigurationError("expect.min-psnr", String(minimum), "is a PSNR in dB, 0…100")
        }
        if allocator == .auto && strategy == .import && mem2mem != nil {
            throw ConfigurationError(
                "allocator", "auto", "the advisor does not yet ask a mem2mem stage: name the allocator")
        }
        if source == Self.patternSource && strategy != .import {
            throw ConfigurationError(
                "strategy", strategy.rawValue,
                "the pattern source writes into buffers from the allocator: use strategy import")
        }
        if toFile && strategy != .export {
            throw ConfigurationError(
                "strategy", strategy.rawValue,
                "a file sink reads the capture node's exported buffers: use strategy export")
        }
        if toFile && source == Self.patternSource {
            throw ConfigurationError("source", source, "a file sink takes its frames from a capture node")
        }
    }

    /// `WIDTHxHEIGHT`, each in `sizeRange`.
    public static func parseSize(_ text: String) throws(ConfigurationError) -> (width: Int, height: Int) {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]) else {
            throw ConfigurationError("size", text, "must look like 640x480")
        }
        guard sizeRange.contains(width), sizeRange.contains(height) else {
            throw ConfigurationError(
                "size", text, "out of range: each side \(sizeRange.lowerBound)…\(sizeRange.upperBound)")
        }
        return (width, height)
    }
}
