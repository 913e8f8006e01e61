import Foundation
import Logging

/// Capture → display without a copy (or with one, to compare): frames from a V4L2 capture
/// node are shown on a KMS plane, each captured buffer going back to the capture queue only
/// once the display has flipped away from it, and sampled frames are compared pixel by pixel
/// with what the display wrote back through its writeback connector.
public struct Pipeline {
    public let configuration: PipelineConfiguration
    public let kernel: any Kernel
    public let logger: Logger

    /// The pixel format both sides use: V4L2 'XR24' (B, G, R, X in memory) is DRM's XRGB8888.
    public static let pixelFormat: UInt32 = 0x3432_5258
    /// With a mem2mem stage (vim2m has no XR24) the display gets RGB565: V4L2 'RGBP' is DRM's 'RG16'.
    static let rgb565 = (v4l2: UInt32(0x5042_4752), drm: UInt32(0x3631_4752))

    /// What the display scans out: (V4L2 fourcc, DRM fourcc, bytes per pixel).
    var displayFormat: (v4l2: UInt32, drm: UInt32, bytesPerPixel: Int) {
        configuration.mem2mem == nil ? (Self.pixelFormat, Self.pixelFormat, 4) : (Self.rgb565.v4l2, Self.rgb565.drm, 2)
    }

    public struct Progress: Sendable {
        public var frame: Int
        public var total: Int
        public var framesPerSecond: Double
        public var drops: Int
    }

    public init(_ configuration: PipelineConfiguration, kernel: any Kernel, logger: Logger = Logger(label: "dmabufkit.pipeline")) {
        (self.configuration, self.kernel, self.logger) = (configuration, kernel, logger)
    }

    /// Runs the pipeline. A run that goes through but misses its expectations returns a report
    /// with failures; one that cannot go on (a device missing or busy, a format the other
    /// side cannot take, a stage failing) throws, after releasing everything it set up.
    public func run(progress: (Progress) -> Void = { _ in }) throws(KernelError) -> PipelineReport {
        let settings = configuration
        guard settings.frames > 0, settings.buffers >= 2, settings.width > 0, settings.height > 0, settings.verifyEvery >= 0 else {
            throw KernelError("pipeline", .EINVAL, reason: "frames and size must be positive, buffers at least 2, verify-every at least 0")
        }
        var report = PipelineReport(configuration: settings)
        if settings.sink.hasPrefix(PipelineConfiguration.fileSinkPrefix) {
            return try runToFile(String(settings.sink.dropFirst(PipelineConfiguration.fileSinkPrefix.count)), report: report, progress: progress)
        }
        let display = try openSink(settings.sink)
        let pipe = try DisplayPipe(device: display, size: (settings.width, settings.height))
        guard pipe.planeFormats.contains(displayFormat.drm) else {
            throw KernelError("pipeline", .EINVAL, path: display.path, reason: "\(display.driver)'s primary plane cannot scan out \(V4L2PixelFormat.name(displayFormat.drm))")
        }
        if settings.verifyEvery > 0 && pipe.writeback == nil {
            throw KernelError("pipeline", .EOPNOTSUPP, path: display.path, reason: "\(display.driver) has no writeback connector to verify frames with; use verify-every 0")
        }
        report.sinkPath = "\(display.path) (\(display.driver))"
        report.format = "\(V4L2PixelFormat.name(displayFormat.drm)) \(settings.width)x\(settings.height)"
        if settings.source == PipelineConfiguration.patternSource {
            return try runPattern(display: display, pipe: pipe, report: report, progress: progress)
        }
        let camera = try openSource(settings.source)
        guard let type = camera.capability.streamingType, !type.isOutput else {
            throw KernelError("pipeline", .EINVAL, path: camera.path, reason: "\(camera.capability.card) is not a video capture node")
        }
        let format = try configureSource(camera, type: type, pixelFormat: settings.mem2mem == nil ? Self.pixelFormat : V4L2PixelFormat.rgb24)
        report.sourcePath = "\(camera.path) (\(camera.capability.card))"
        if let stage = settings.mem2mem {
            return try runMem2Mem(stage, camera: camera, type: type, display: display, pipe: pipe, report: report, progress: progress)
        }
        let pitch = Int(format.planes[0].bytesPerLine), size = Int(format.planes[0].sizeImage)

        var slots: [PipelineSlot] = []
        var targets: [PipelineSlot] = []  // copy: the display's own buffers
        let writeback = PipelineSlot()
        defer {
            for slot in slots + targets + [writeback] { slot.close(logger) }
        }
        let queue = try V4L2Queue(device: camera, type: type, memory: settings.strategy == .import ? .dmabuf : .mmap, count: settings.buffers)
        for index in queue.indices {
            let slot = PipelineSlot()
            slots.append(slot)
            switch settings.strategy {
            case .export, .copy:
                slot.dmaBuf = try queue.export(index)
            case .import:
                slot.dmaBuf = try allocate(size: size, pitch: pitch, on: display, into: slot)
            }
            if settings.strategy != .copy { try attach(slot, to: display, pitch: pitch) }
        }
        if settings.strategy == .copy {
            for _ in 0..<2 {
                let target = PipelineSlot()
                targets.append(target)
                try makeDumb(target, on: display)
            }
        }
        if settings.verifyEvery > 0 { try makeDumb(writeback, on: display) }

        for (index, slot) in zip(queue.indices, slots) { try enqueue(queue, index, slot) }
        try queue.start()
        defer { try? pipe.disable(on: display) }

        var displayed: BufferIndex?
        var lastSequence: UInt32?
        var latencies: [Double] = []
        let started = ContinuousClock.now
        var firstShown: ContinuousClock.Instant?
        var shownCount = 0
        while shownCount < settings.frames {
            guard let frame = try queue.dequeue(waiting: .seconds(2)) else {
                throw KernelError("VIDIOC_DQBUF", .ETIMEDOUT, path: camera.path, reason: "no frame within 2 s after \(shownCount) shown")
            }
            let index = BufferIndex(rawValue: frame.index)
            let slot = slots[Int(frame.index)]
            if let last = lastSequence {
                if frame.sequence > last { report.drops += Int(frame.sequence - last - 1) } else { report.repeats += 1 }
            }
            lastSequence = frame.sequence
            if frame.flags & V4L2BufferInfo.flagError != 0 {
                report.erroneousFrames += 1
                try enqueue(queue, index, slot)
                continue
            }

            // What goes on screen: the captured buffer itself, or a copy of it.
            let shown: PipelineSlot
            if settings.strategy == .copy {
                shown = targets[shownCount % targets.count]
                try copy(slot, into: shown, on: display, rows: settings.height, rowBytes: settings.width * 4, sourcePitch: pitch)
                report.bytesCopied += settings.width * 4 * settings.height
                try enqueue(queue, index, slot)  // the display never scans it out
            } else {
                shown = slot
            }
            let flipped = try present(shown, number: shownCount, pitch: settings.strategy == .copy ? shown.pitch : pitch, display: display, pipe: pipe,
                                      writeback: writeback, report: &report) { () throws(KernelError) in
                // The display has left the previous buffer: it may be filled again.
                if settings.strategy != .copy {
                    if let previous = displayed { try enqueue(queue, previous, slots[Int(previous.rawValue)]) }
                    displayed = index
                }
            }
            firstShown = firstShown ?? .now
            // From the capture timestamp (vivid stamps a frame's end, CLOCK_MONOTONIC) to the
            // flip-complete event in our hands.
            latencies.append((flipped - frame.timestamp).seconds * 1000)
            shownCount += 1
            let elapsed = firstShown.map { ContinuousClock.now - $0 } ?? .zero
            let rate = shownCount > 1 ? Double(shownCount - 1) / max(elapsed.seconds, 1e-9) : 0
            progress(Progress(frame: shownCount, total: settings.frames, framesPerSecond: rate, drops: report.drops))
        }
        try pipe.disable(on: display)
        try queue.release()
        return finish(report, shown: shownCount, started: started, firstShown: firstShown, latencies: latencies)
    }

    private func finish(
        _ report: PipelineReport, shown: Int, started: ContinuousClock.Instant, firstShown: ContinuousClock.Instant?, latencies: [Double]
    ) -> PipelineReport {
        var report = report
        let elapsed = firstShown.map { ContinuousClock.now - $0 } ?? .zero
        report.framesShown = shown
        report.framesPerSecond = shown > 1 ? Double(shown - 1) / max(elapsed.seconds, 1e-9) : 0
        report.latencyMilliseconds = PipelineReport.Summary(latencies)
        report.seconds = (ContinuousClock.now - started).seconds
        report.judge()
        logger.info("\(report.summary)")
        return report
    }

    /// The file sink: every captured frame (XR24 rows) appended to a file, read through the
    /// exported dma-buf under SYNC: a CPU copy, reported as such. Verification here can only
    /// say whether a sampled frame shows a picture (not one flat colour).
    private func runToFile(_ path: String, report: PipelineReport, progress: (Progress) -> Void) throws(KernelError) -> PipelineReport {
        var report = report
        let settings = configuration
        guard settings.strategy == .export, settings.mem2mem == nil else {
            throw KernelError("pipeline", .EINVAL, path: path, reason: "a file sink reads the capture node's exported buffers: use the export strategy, no mem2mem")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw KernelError("open", .EACCES, path: path, reason: "cannot create the output file")
        }
        defer { try? file.close() }
        let camera = try openSource(settings.source)
        guard let type = camera.capability.streamingType, !type.isOutput else {
            throw KernelError("pipeline", .EINVAL, path: camera.path, reason: "\(camera.capability.card) is not a video capture node")
        }
        let format = try configureSource(camera, type: type, pixelFormat: Self.pixelFormat)
        (report.sourcePath, report.sinkPath, report.copying) = ("\(camera.path) (\(camera.capability.card))", path, true)
        report.format = "XR24 \(settings.width)x\(settings.height)"
        let (pitch, size) = (Int(format.planes[0].bytesPerLine), Int(format.planes[0].sizeImage))
        var slots: [PipelineSlot] = []
        defer { for slot in slots { slot.close(logger) } }
        let queue = try V4L2Queue(device: camera, type: type, memory: .mmap, count: settings.buffers)
        for index in queue.indices {
            let slot = PipelineSlot()
            slots.append(slot)
            slot.dmaBuf = try queue.export(index)
            try queue.enqueue(index)
        }
        try queue.start()
        var lastSequence: UInt32?
        var latencies: [Double] = []
        let started = ContinuousClock.now
        var firstShown: ContinuousClock.Instant?
        for number in 0..<settings.frames {
            guard let frame = try queue.dequeue(waiting: .seconds(2)) else {
                throw KernelError("VIDIOC_DQBUF", .ETIMEDOUT, path: camera.path, reason: "no frame within 2 s after \(number) written")
            }
            if let last = lastSequence { if frame.sequence > last { report.drops += Int(frame.sequence - last - 1) } else { report.repeats += 1 } }
            lastSequence = frame.sequence
            let bytes = try slots[Int(frame.index)].withDmaBuf { buffer throws(KernelError) in
                try rethrowingKernelErrors("read") { try buffer.read { Array($0.prefix(size)) } }
            }
            do { try file.write(contentsOf: bytes) } catch { throw KernelError("write", .EIO, path: path, reason: "\(error)") }
            report.bytesCopied += size
            try queue.enqueue(BufferIndex(rawValue: frame.index))
            firstShown = firstShown ?? .now
            latencies.append((Self.monotonicNow() - frame.timestamp).seconds * 1000)
            if settings.verifyEvery > 0 && number % settings.verifyEvery == 0 {
                report.framesVerified += 1
                let first = bytes.prefix(3)
                let flat = (0..<settings.height).allSatisfy { y in
                    stride(from: y * pitch, to: y * pitch + settings.width * 4, by: 4).allSatisfy { bytes[$0..<($0 + 3)].elementsEqual(first) }
                }
                if flat { report.blankFrames += 1 }
            }
            let elapsed = ContinuousClock.now - firstShown!
            progress(Progress(frame: number + 1, total: settings.frames, framesPerSecond: number > 0 ? Double(number) / max(elapsed.seconds, 1e-9) : 0, drops: report.drops))
        }
        try queue.release()
        return finish(report, shown: settings.frames, started: started, firstShown: firstShown, latencies: latencies)
    }

    /// The pattern source: vivid's 75% bars (or black, test pattern 5) with the frame number
    /// in binary along the top-left corner, written by the CPU (under SYNC) into buffers from
    /// the allocator, each shown once the display has left it. Runs at the display's rate.
    private func runPattern(
        display: borrowing DRMDevice, pipe: DisplayPipe, report: PipelineReport, progress: (Progress) -> Void
    ) throws(KernelError) -> PipelineReport {
        var report = report
        let settings = configuration
        guard settings.strategy == .import else {
            throw KernelError("pipeline", .EINVAL, reason: "the pattern source writes into buffers from the allocator: use the import strategy")
        }
        report.sourcePath = "pattern in \(settings.allocator.rawValue) buffers"
        let pitch = settings.width * 4
        var slots: [PipelineSlot] = []
        let writeback = PipelineSlot()
        defer { for slot in slots + [writeback] { slot.close(logger) } }
        for _ in 0..<settings.buffers {
            let slot = PipelineSlot()
            slots.append(slot)
            slot.dmaBuf = try allocate(size: pitch * settings.height, pitch: pitch, on: display, into: slot)
            try attach(slot, to: display, pitch: pitch)
        }
        if settings.verifyEvery > 0 { try makeDumb(writeback, on: display) }
        defer { try? pipe.disable(on: display) }

        let bars = (0..<settings.width).flatMap { x -> [UInt8] in
            let bar = settings.testPattern == 5 ? (red: 0, green: 0, blue: 0) : ColourBars.seventyFivePercent[x * 8 / settings.width]
            return [bar.blue, bar.green, bar.red, 0]
        }
        var latencies: [Double] = []
        let started = ContinuousClock.now
        var firstShown: ContinuousClock.Instant?
        for number in 0..<settings.frames {
            // With two or more buffers the one written next is never the one on screen.
            let slot = slots[number % slots.count]
            let written = Self.monotonicNow()
            try slot.withDmaBuf { buffer throws(KernelError) in
                try rethrowingKernelErrors("write") {
                    try buffer.write { view in
                        for y in 0..<settings.height {
                            bars.withUnsafeBytes { view.baseAddress!.advanced(by: y * pitch).copyMemory(from: $0.baseAddress!, byteCount: pitch) }
                        }
                        // The frame number, one 8x8 block per bit: a stale buffer cannot pass.
                        for bit in 0..<16 where settings.testPattern != 5 {
                            let value: UInt8 = number >> bit & 1 == 1 ? 0xff : 0x00
                            for y in 0..<8 { (view.baseAddress! + y * pitch + bit * 32).initializeMemory(as: UInt8.self, repeating: value, count: 32) }
                        }
                    }
                }
            }
            let flipped = try present(slot, number: number, pitch: pitch, display: display, pipe: pipe, writeback: writeback, report: &report) {}
            firstShown = firstShown ?? .now
            latencies.append((flipped - written).seconds * 1000)
            let elapsed = ContinuousClock.now - firstShown!
            progress(Progress(frame: number + 1, total: settings.frames, framesPerSecond: number > 0 ? Double(number) / max(elapsed.seconds, 1e-9) : 0, drops: 0))
        }
        try pipe.disable(on: display)
        return finish(report, shown: settings.frames, started: started, firstShown: firstShown, latencies: latencies)
    }

    /// Every RGB channel of two XRGB8888 pixels within `tolerance`.
    static func within(_ tolerance: Int, _ a: UInt32, _ b: UInt32) -> Bool {
        for shift: UInt32 in [0, 8, 16] {
            let difference = Int((a >> shift) & 0xff) - Int((b >> shift) & 0xff)
            if difference > tolerance || difference < -tolerance { return false }
        }
        return true
    }

    static func monotonicNow() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    /// Shows `shown` as frame `number` (the first with a modeset), waits for the flip, runs
    /// `afterFlip` (the previous buffer is free), then verifies the frame through writeback
    /// when it is due. Returns when the flip event arrived (CLOCK_MONOTONIC).
    private func present(
        _ shown: PipelineSlot, number: Int, pitch: Int, display: borrowing DRMDevice, pipe: DisplayPipe, writeback: PipelineSlot,
        report: inout PipelineReport, afterFlip: () throws(KernelError) -> Void
    ) throws(KernelError) -> Duration {
        let settings = configuration
        let verify = settings.verifyEvery > 0 && number % settings.verifyEvery == 0
        let framebuffer = try shown.framebufferID()
        let writebackID = settings.verifyEvery > 0 ? try writeback.framebufferID() : nil
        let fences: ShownFrame
        if number == 0 {
            fences = try pipe.show(framebuffer, on: display, writebackInto: writebackID, pageFlipEvent: UInt64(number))
        } else {
            fences = try pipe.flip(to: framebuffer, on: display, writebackInto: verify ? writebackID : nil, pageFlipEvent: UInt64(number))
        }
        try waitForFlip(display, UInt64(number))
        let flipped = Self.monotonicNow()
        try afterFlip()
        if verify {
            guard try fences.writebackDone(within: .seconds(2)) else {
                throw KernelError("pipeline", .ETIMEDOUT, path: display.path, reason: "the writeback of frame \(number) did not complete within 2 s")
            }
            let (differing, blank) = try compare(shown, writeback, on: display, pitch: pitch)
            report.framesVerified += 1
            if differing > 0 {
                report.framesMismatched += 1
                logger.warning("frame \(number): \(differing) pixels differ from the writeback")
            }
            if blank { report.blankFrames += 1 }
            if let directory = settings.dumpDirectory {
                try dump(shown, pitch: pitch, pixelFormat: displayFormat.v4l2, on: display, to: "\(directory)/frame-\(String(format: "%04d", number))-shown.png")
                try dump(writeback, pitch: writeback.pitch, pixelFormat: Self.pixelFormat, on: display, to: "\(directory)/frame-\(String(format: "%04d", number))-writeback.png")
            }
        }
        try fences.close()
        return flipped
    }

    // MARK: Set-up

    private func openSink(_ name: String) throws(KernelError) -> DRMDevice {
        do {
            return name.hasPrefix("/") ? try DRMDevice(path: name, kernel: kernel) : try DRMDevice(driver: name, kernel: kernel)
        } catch { throw error.explained("the display (sink) \(name) is not available") }
    }

    private func openSource(_ name: String) throws(KernelError) -> V4L2Device {
        if name.hasPrefix("/") { return try V4L2Device(path: name, kernel: kernel) }
        let nodes = try V4L2Device.nodes(kernel: kernel)
        let node = nodes.first { $0.name == name } ?? nodes.first { $0.name.hasPrefix("\(name)-") && $0.name.hasSuffix("-vid-cap") }
        guard let node else {
            throw KernelError("open", .ENOENT, path: V4L2Device.sysfsDirectory, reason: "no capture node named \(name) (found: \(nodes.map(\.name).joined(separator: ", ")))")
        }
        return try V4L2Device(path: node.path, kernel: kernel)
    }

    /// XR24 at the configured size and rate; vivid's test pattern when asked.
    private func configureSource(_ camera: borrowing V4L2Device, type: V4L2BufferType, pixelFormat: UInt32) throws(KernelError) -> V4L2Format {
        let settings = configuration
        if camera.capability.driver == "vivid" {
            try camera.makeVividDeterministic()
            if let pattern = settings.testPattern { try camera.setControl(VividControl.testPattern, Int32(pattern)) }
        }
        let format = try setFormat(camera, type: type, pixelFormat)
        if let fps = settings.framesPerSecond {
            let chosen = try camera.setFrameInterval(type, V4L2Fraction(1, UInt32(fps)))
            if chosen != V4L2Fraction(1, UInt32(fps)) { logger.notice("\(camera.path) runs at \(chosen) s per frame, not 1/\(fps)") }
        }
        return format
    }

    /// The display's view of a slot's buffer: its own dumb buffer, or the dma-buf imported;
    /// then a framebuffer over it.
    private func attach(_ slot: PipelineSlot, to display: borrowing DRMDevice, pitch: Int) throws(KernelError) {
        if let own = slot.ownGEM.take() {
            slot.gem = consume own
        } else {
            slot.gem = try slot.withDmaBuf { buffer throws(KernelError) in try display.importBuffer(buffer) }
        }
        try slot.addFramebuffer { gem throws(KernelError) in try framebuffer(display, gem, pitch: pitch) }
    }

    /// A dumb XRGB8888 buffer of the display with a framebuffer: a copy target, or the
    /// writeback target (always XRGB8888, whatever the plane shows).
    private func makeDumb(_ slot: PipelineSlot, on display: borrowing DRMDevice) throws(KernelError) {
        let gem = try display.createDumbBuffer(width: configuration.width, height: configuration.height)
        slot.pitch = gem.pitch ?? configuration.width * 4
        slot.gem = consume gem
        try slot.addFramebuffer { gem throws(KernelError) in try framebuffer(display, gem, pitch: slot.pitch, format: Self.pixelFormat) }
    }

    /// S_FMT of `pixelFormat` at the configured size; an error when the node settles on anything else.
    @discardableResult
    private func setFormat(_ device: borrowing V4L2Device, type: V4L2BufferType, _ pixelFormat: UInt32) throws(KernelError) -> V4L2Format {
        let (width, height) = (configuration.width, configuration.height)
        let format = try device.setFormat(V4L2Format(type: type, width: UInt32(width), height: UInt32(height), pixelFormat: pixelFormat))
        guard format.pixelFormat == pixelFormat, Int(format.width) == width, Int(format.height) == height else {
            throw KernelError("VIDIOC_S_FMT", .EINVAL, path: device.path, reason:
                "\(device.capability.card) gives \(V4L2PixelFormat.name(format.pixelFormat)) \(format.width)x\(format.height) for \(V4L2PixelFormat.name(pixelFormat)) \(width)x\(height), which the next stage cannot take as is")
        }
        return format
    }

    /// With a mem2mem stage: the capture node's buffers (RGB24, exported) are queued into the
    /// stage's output queue; the stage's capture buffers (RGB565, exported) are what the
    /// display shows. A capture buffer goes back once the stage returns it; a stage buffer
    /// once the display has flipped away from it.
    private func runMem2Mem(
        _ name: String, camera: borrowing V4L2Device, type: V4L2BufferType, display: borrowing DRMDevice, pipe: DisplayPipe,
        report: PipelineReport, progress: (Progress) -> Void
    ) throws(KernelError) -> PipelineReport {
        var report = report
        let settings = configuration
        guard settings.strategy == .export else {
            throw KernelError("pipeline", .EINVAL, reason: "a mem2mem stage passes buffers along by export: use the export strategy")
        }
        let stage = try V4L2Device(name: name, kernel: kernel)
        guard stage.capability.deviceCaps & V4L2Capability.videoMem2Mem != 0 else {
            throw KernelError("pipeline", .EINVAL, path: stage.path, reason: "\(name) is not a single-planar mem2mem node")
        }
        report.sourcePath += " → \(stage.path) (\(stage.capability.card))"
        let input = try setFormat(stage, type: .videoOutput, V4L2PixelFormat.rgb24)
        let output = try setFormat(stage, type: .videoCapture, Self.rgb565.v4l2)
        let (pitch, inputSize) = (Int(output.planes[0].bytesPerLine), input.planes[0].sizeImage)

        var captured: [PipelineSlot] = [], shown: [PipelineSlot] = []
        let writeback = PipelineSlot()
        defer { for slot in captured + shown + [writeback] { slot.close(logger) } }
        let source = try V4L2Queue(device: camera, type: type, memory: .mmap, count: settings.buffers)
        let stageIn = try V4L2Queue(device: stage, type: .videoOutput, memory: .dmabuf, count: source.count)
        let stageOut = try V4L2Queue(device: stage, type: .videoCapture, memory: .mmap, count: settings.buffers)
        for index in source.indices {
            let slot = PipelineSlot()
            captured.append(slot)
            slot.dmaBuf = try source.export(index)
            try source.enqueue(index)
        }
        for index in stageOut.indices {
            let slot = PipelineSlot()
            shown.append(slot)
            slot.dmaBuf = try stageOut.export(index)
            try attach(slot, to: display, pitch: pitch)
            try stageOut.enqueue(index)
        }
        if settings.verifyEvery > 0 { try makeDumb(writeback, on: display) }
        try source.start()
        try stageIn.start()
        try stageOut.start()
        defer { try? pipe.disable(on: display) }

        var displayed: BufferIndex?
        var lastSequence: UInt32?
        var latencies: [Double] = []
        let started = ContinuousClock.now
        var firstShown: ContinuousClock.Instant?
        var count = 0
        func waitFor(_ queue: borrowing V4L2Queue, _ what: String) throws(KernelError) -> V4L2BufferInfo {
            guard let buffer = try queue.dequeue(waiting: .seconds(2)) else {
                throw KernelError("VIDIOC_DQBUF", .ETIMEDOUT, path: queue.path, reason: "no \(what) within 2 s after \(count) shown")
            }
            return buffer
        }
        while count < settings.frames {
            let frame = try waitFor(source, "captured frame")
            if let last = lastSequence { if frame.sequence > last { report.drops += Int(frame.sequence - last - 1) } else { report.repeats += 1 } }
            lastSequence = frame.sequence
            try stageIn.enqueue(BufferIndex(rawValue: frame.index), dmaBufs: [try captured[Int(frame.index)].withDmaBuf { $0.fd }], bytesUsed: [inputSize])
            let converted = try waitFor(stageOut, "converted frame")
            let consumed = try waitFor(stageIn, "returned source buffer")
            try source.enqueue(BufferIndex(rawValue: consumed.index))
            let index = BufferIndex(rawValue: converted.index)
            let flipped = try present(shown[Int(converted.index)], number: count, pitch: pitch, display: display, pipe: pipe, writeback: writeback,
                                      report: &report) { () throws(KernelError) in
                if let previous = displayed { try stageOut.enqueue(previous) }
                displayed = index
            }
            firstShown = firstShown ?? .now
            latencies.append((flipped - frame.timestamp).seconds * 1000)
            count += 1
            let elapsed = ContinuousClock.now - firstShown!
            progress(Progress(frame: count, total: settings.frames, framesPerSecond: count > 1 ? Double(count - 1) / max(elapsed.seconds, 1e-9) : 0, drops: report.drops))
        }
        try pipe.disable(on: display)
        try stageOut.release()
        try stageIn.release()
        try source.release()
        try stage.close()
        return finish(report, shown: count, started: started, firstShown: firstShown, latencies: latencies)
    }

    private func framebuffer(_ display: borrowing DRMDevice, _ gem: borrowing GEMBuffer, pitch: Int, format: UInt32? = nil) throws(KernelError) -> Framebuffer {
        try display.addFramebuffer(DRMFramebufferRequest(
            width: UInt32(configuration.width), height: UInt32(configuration.height), format: format ?? displayFormat.drm,
            handles: [gem.handle.rawValue], pitches: [UInt32(pitch)]))
    }

    /// A buffer of `size` bytes from the configured allocator (dumb buffers leave their GEM
    /// buffer in the slot).
    private func allocate(size: Int, pitch: Int, on display: borrowing DRMDevice, into slot: PipelineSlot) throws(KernelError) -> DmaBuf {
        switch configuration.allocator {
        case .systemHeap, .reservedHeap:
            let heap = try DmaHeap(configuration.allocator == .systemHeap ? "system" : "reserved", kernel: kernel)
            return try heap.allocate(length: size, name: "dmabuf-pipe")
        case .udmabuf:
            let page = kernel.pageSize
            let memfd = try Memfd(kernel: kernel, name: "dmabuf-pipe", length: (size + page - 1) / page * page)
            return try UdmabufDevice(kernel: kernel).create(from: memfd)
        case .dumb:
            let gem = try display.createDumbBuffer(width: configuration.width, height: configuration.height)
            if let dumbPitch = gem.pitch, dumbPitch != pitch {
                throw KernelError("DRM_IOCTL_MODE_CREATE_DUMB", .EINVAL, path: display.path, reason: "dumb buffer rows are \(dumbPitch) bytes, the source's \(pitch)")
            }
            let dmaBuf = try display.export(gem)
            slot.ownGEM = consume gem
            return dmaBuf
        }
    }

    private func enqueue(_ queue: borrowing V4L2Queue, _ index: BufferIndex, _ slot: PipelineSlot) throws(KernelError) {
        if queue.memory == .dmabuf { try queue.enqueue(index, dmaBufs: [try slot.withDmaBuf { $0.fd }]) } else { try queue.enqueue(index) }
    }

    private func waitForFlip(_ display: borrowing DRMDevice, _ userData: UInt64) throws(KernelError) {
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            if try display.readEvents(timeout: deadline - .now).contains(where: { $0.type == DRMEvent.flipComplete && $0.userData == userData }) {
                return
            }
        }
        throw KernelError("DRM_IOCTL_MODE_ATOMIC", .ETIMEDOUT, path: display.path, reason: "no flip-complete event within 2 s")
    }

    // MARK: Pixels

    private func copy(_ source: PipelineSlot, into target: PipelineSlot, on display: borrowing DRMDevice, rows: Int, rowBytes: Int, sourcePitch: Int) throws(KernelError) {
        let targetPitch = target.pitch
        try source.withDmaBuf { buffer throws(KernelError) in
            try target.withGEM { gem throws(KernelError) in
                try rethrowingKernelErrors("copy") {
                    try buffer.read { from in
                        try display.withMapping(gem) { to in
                            for row in 0..<rows {
                                to.baseAddress!.advanced(by: row * targetPitch).copyMemory(from: from.baseAddress!.advanced(by: row * sourcePitch), byteCount: rowBytes)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes a buffer (rows of `pitch` bytes) as PNG, converted to RGB by libv4lconvert.
    private func dump(_ slot: PipelineSlot, pitch: Int, pixelFormat: UInt32, on display: borrowing DRMDevice, to path: String) throws(KernelError) {
        let (width, height) = (configuration.width, configuration.height)
        let bytes: [UInt8] = try slot.hasDmaBuf
            ? slot.withDmaBuf { buffer throws(KernelError) in try rethrowingKernelErrors("read") { try buffer.read { Array($0.prefix(pitch * height)) } } }
            : slot.withGEM { gem throws(KernelError) in try rethrowingKernelErrors("read") { try display.withMapping(gem) { Array($0.prefix(pitch * height)) } } }
        let format = V4L2Format(type: .videoCapture, width: UInt32(width), height: UInt32(height), pixelFormat: pixelFormat,
                                planes: [V4L2Format.Plane(bytesPerLine: UInt32(pitch), sizeImage: UInt32(pitch * height))])
        try PNGFile.write(rgb: try FrameConverter().rgb24([bytes], format: format), width: width, height: height, to: path)
    }

    /// Pixels (RGB, the X byte ignored) that differ between the shown buffer and the
    /// writeback, and whether the shown picture is one flat colour.
    private func compare(_ shown: PipelineSlot, _ writeback: PipelineSlot, on display: borrowing DRMDevice, pitch: Int) throws(KernelError) -> (Int, Bool) {
        let (width, height) = (configuration.width, configuration.height)
        let writebackPitch = writeback.pitch
        let rgb565 = displayFormat.bytesPerPixel == 2
        func count(_ shownView: UnsafeRawBufferPointer, _ written: UnsafeRawBufferPointer) -> (Int, Bool) {
            let b = written.bindMemory(to: UInt32.self)
            let rowB = writebackPitch / 4
            var differing = 0, flat = true
            if rgb565 {
                // vkms widens RGB565 to 16 bits a channel and narrows it for writeback: allow ±1.
                let a = shownView.bindMemory(to: UInt16.self)
                let first = a[0]
                for y in 0..<height {
                    for x in 0..<width {
                        let raw = UInt16(littleEndian: a[y * pitch / 2 + x])
                        let expected = DRMFormat.xrgb8888(fromRGB565: raw), got = b[y * rowB + x]
                        if !Self.within(1, expected, got) { differing += 1 }
                        if flat && raw != first { flat = false }
                    }
                }
                return (differing, flat)
            }
            let a = shownView.bindMemory(to: UInt32.self)
            let rowA = pitch / 4
            let first = a[0] & 0x00ff_ffff
            for y in 0..<height {
                let (startA, startB) = (y * rowA, y * rowB)
                for x in 0..<width {
                    let pixel = a[startA + x] & 0x00ff_ffff
                    if pixel != b[startB + x] & 0x00ff_ffff { differing += 1 }
                    if flat && pixel != first { flat = false }
                }
            }
            return (differing, flat)
        }
        return try writeback.withGEM { written throws(KernelError) in
            try rethrowingKernelErrors("compare") {
                try display.withMapping(written) { writtenView in
                    if shown.hasDmaBuf {
                        return try shown.withDmaBuf { buffer throws(KernelError) in
                            try rethrowingKernelErrors("compare") { try buffer.read { count($0, UnsafeRawBufferPointer(writtenView)) } }
                        }
                    }
                    return try shown.withGEM { gem throws(KernelError) in
                        try rethrowingKernelErrors("compare") { try display.withMapping(gem) { count(UnsafeRawBufferPointer($0), UnsafeRawBufferPointer(writtenView)) } }
                    }
                }
            }
        }
    }
}

/// Runs `body`, which throws untyped (CPU-access closures), keeping KernelErrors as they are.
private func rethrowingKernelErrors<R>(_ operation: String, _ body: () throws -> R) throws(KernelError) -> R {
    do { return try body() } catch let error as KernelError { throw error } catch { throw KernelError(operation, .EIO, reason: "\(error)") }
}

/// One buffer of a run and what each side holds of it; released in order (framebuffer, GEM
/// handle, dma-buf) when the run ends, however it ends.
final class PipelineSlot {
    var dmaBuf: DmaBuf?
    var gem: GEMBuffer?
    /// A dumb buffer made for this slot, before the display's framebuffer takes it.
    var ownGEM: GEMBuffer?
    var framebuffer: Framebuffer?
    var pitch = 0

    var hasDmaBuf: Bool { switch dmaBuf { case .some: true; case .none: false } }

    func withDmaBuf<R: ~Copyable>(_ body: (borrowing DmaBuf) throws(KernelError) -> R) throws(KernelError) -> R {
        switch dmaBuf {
        case .some(let buffer): return try body(buffer)
        case .none: throw KernelError("pipeline", .EBADF, reason: "this buffer has no dma-buf")
        }
    }

    func withGEM<R: ~Copyable>(_ body: (borrowing GEMBuffer) throws(KernelError) -> R) throws(KernelError) -> R {
        switch gem {
        case .some(let buffer): return try body(buffer)
        case .none: throw KernelError("pipeline", .EBADF, reason: "this buffer has no GEM handle")
        }
    }

    func addFramebuffer(_ make: (borrowing GEMBuffer) throws(KernelError) -> Framebuffer) throws(KernelError) {
        framebuffer = try withGEM(make)
    }

    func framebufferID() throws(KernelError) -> FramebufferID {
        switch framebuffer {
        case .some(let framebuffer): return framebuffer.id
        case .none: throw KernelError("pipeline", .EBADF, reason: "this buffer has no framebuffer")
        }
    }

    func close(_ logger: Logger) {
        do {
            if let framebuffer = framebuffer.take() { try framebuffer.remove() }
            if let gem = gem.take() { try gem.close() }
            if let gem = ownGEM.take() { try gem.close() }
            if let dmaBuf = dmaBuf.take() { try dmaBuf.close() }
        } catch { logger.warning("releasing a pipeline buffer: \(error)") }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
