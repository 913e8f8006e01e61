import DmaBufKernel
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
    /// Asked before each frame: a signal number stops the run there, which then releases
    /// everything and reports what it did, marked interrupted (`StopSignals.pending` in the CLIs).
    public var stopRequest: () -> Int32? = { nil }

    /// The pixel format both sides use: V4L2 'XR24' (B, G, R, X in memory) is DRM's XRGB8888.
    public static let pixelFormat = (v4l2: V4L2PixelFormat.xbgr32, drm: DRMFormat.xrgb8888)
    /// With a mem2mem stage (vim2m has no XR24) the display gets RGB565: V4L2 'RGBP' is DRM's 'RG16'.
    static let rgb565 = (v4l2: V4L2PixelFormat.rgb565, drm: DRMFormat.rgb565)

    /// What the display scans out: the format on each side, and bytes per pixel.
    var displayFormat: (v4l2: V4L2PixelFormat, drm: DRMFormat, bytesPerPixel: Int) {
        configuration.mem2mem == nil
            ? (Self.pixelFormat.v4l2, Self.pixelFormat.drm, 4) : (Self.rgb565.v4l2, Self.rgb565.drm, 2)
    }

    public struct Progress: Sendable {
        public var frame: Int
        public var total: Int
        public var drops: Int
        /// When the first frame was shown: the rate is worked out only when asked for (a
        /// progress step comes every frame; a line of it every few seconds).
        let firstShown: ContinuousClock.Instant?

        /// Frames after the first over the time since it was shown.
        public var framesPerSecond: Double {
            guard frame > 1, let firstShown else { return 0 }
            return Double(frame - 1) / max((ContinuousClock.now - firstShown).seconds, 1e-9)
        }
    }

    public init(
        _ configuration: PipelineConfiguration, kernel: any Kernel, logger: Logger = Logger(label: "dmabufkit.pipeline")
    ) {
        (self.configuration, self.kernel, self.logger) = (configuration, kernel, logger)
    }

    /// Runs the pipeline. A run that goes through but misses its expectations returns a report
    /// with failures; one that cannot go on (a device missing or busy, a format the other
    /// side cannot take, a stage failing) throws, after releasing everything it set up.
    public func run(progress: (Progress) -> Void = { _ in }) throws -> PipelineReport {
        try configuration.validate()
        // A capture node feeds a V4L2 output sink by export only: that refusal comes first, from the run.
        let outputFromCamera =
            configuration.source != PipelineConfiguration.patternSource
            && (try? V4L2Device.nodes(kernel: kernel).contains { $0.name == configuration.sink }) == true
        if configuration.allocator == .auto && configuration.strategy == .import && !outputFromCamera {
            let (resolved, choice) = try chooseAllocator(configuration)
            var pipeline = Pipeline(resolved, kernel: kernel, logger: logger)
            pipeline.stopRequest = stopRequest
            var report = try pipeline.run(progress: progress)
            report.allocatorChoice = choice
            if let expected = configuration.expectations.allocator, expected != resolved.allocator {
                report.failures.append(
                    "allocator auto chose \(resolved.strategy == .export ? "the source's own buffers" : resolved.allocator.rawValue), not \(expected.rawValue): \(choice)"
                )
            }
            return report
        }
        do { return try runConfigured(progress: progress) } catch let error as KernelError {
            throw explainRefusal(error)
        }
    }

    private func runConfigured(progress: (Progress) -> Void) throws -> PipelineReport {
        let settings = configuration
        var report = PipelineReport(configuration: settings)
        report.paced = kernel.pacesFrames
        if settings.sink.hasPrefix(PipelineConfiguration.fileSinkPrefix) && settings.encoder == nil {
            return try runToFile(
                String(settings.sink.dropFirst(PipelineConfiguration.fileSinkPrefix.count)), report: report,
                progress: progress)
        }
        if let tee = settings.tee { return try runTee(tee, report: report, progress: progress) }
        if let encoder = settings.encoder { return try runCodec(encoder, report: report, progress: progress) }
        if try V4L2Device.nodes(kernel: kernel).contains(where: { $0.name == settings.sink }) {
            return try runToVideoOutput(settings.sink, report: report, progress: progress)
        }
        let (owned, pipe) = try openDisplay()
        defer { try? owned.close() }
        report.sinkPath = "\(owned.path) (\(owned.driver))"
        report.format = "\(displayFormat.drm) \(settings.width)x\(settings.height)"
        if settings.source == PipelineConfiguration.patternSource {
            return try runPattern(display: owned, pipe: pipe, report: report, progress: progress)
        }
        return try runCapture(display: owned, pipe: pipe, report: report, progress: progress)
    }

    /// The display (sink) with its pipe at the configured size, checked for the plane's format
    /// and, to verify, a writeback connector.
    func openDisplay() throws -> (OwnedDRMDevice, DisplayPipe) {
        let settings = configuration
        let display = OwnedDRMDevice(try openSink(settings.sink))
        do {
            let pipe = try display.with { try DisplayPipe(device: $0, size: (settings.width, settings.height)) }
            guard pipe.planeFormats.contains(displayFormat.drm) else {
                throw PipelineError(
                    path: display.path, "\(display.driver)'s primary plane cannot scan out \(displayFormat.drm)")
            }
            if settings.verifyEvery > 0 && pipe.writeback == nil {
                throw PipelineError(
                    path: display.path,
                    "\(display.driver) has no writeback connector to verify frames with; use verify-every 0")
            }
            return (display, pipe)
        } catch {
            try? display.close()
            throw error
        }
    }

    /// Capture → display, a graph of stages: the capture node's frames shown as they are
    /// (export, import), copied into the display's own buffers (copy), or converted by a
    /// mem2mem node on the way.
    private func runCapture(
        display: OwnedDRMDevice, pipe: DisplayPipe, report: PipelineReport, progress: (Progress) -> Void
    ) throws -> PipelineReport {
        var report = report
        let settings = configuration
        if settings.mem2mem != nil && settings.strategy != .export {
            throw PipelineError("a mem2mem stage passes buffers along by export: use the export strategy")
        }
        let camera = OwnedVideoDevice(try openSource(settings.source))
        defer { try? camera.close() }
        let (type, format) = try camera.with {
            try configureSource($0, pixelFormat: settings.mem2mem == nil ? Self.pixelFormat.v4l2 : .rgb24)
        }
        report.sourcePath = "\(camera.path) (\(camera.capability.card))"
        let pitch = Int(format.planes[0].bytesPerLine), size = Int(format.planes[0].sizeImage)

        var slots: [PipelineSlot] = []
        var shownSlots: [PipelineSlot] = []  // copy targets, or the mem2mem node's results
        let writeback = PipelineSlot()
        defer { for slot in slots + shownSlots + [writeback] { slot.close(logger) } }
        let queue = OwnedQueue(
            try camera.with {
                try V4L2Queue(
                    device: $0, type: type, memory: settings.strategy == .import ? .dmabuf : .mmap,
                    count: settings.buffers)
            })
        if settings.strategy == .import {
            for _ in queue.indices {
                let slot = PipelineSlot()
                slots.append(slot)
                slot.dmaBuf = try display.with { try allocate(size: size, pitch: pitch, on: $0, into: slot) }
            }
        } else {
            try queue.exportAll(into: &slots)
        }
        for slot in slots { slot.pitch = pitch }
        if settings.verifyEvery > 0 { try display.with { try makeDumb(writeback, on: $0) } }

        let source = CaptureSourceStage(
            name: camera.path, queue: queue, slots: slots, frames: settings.frames, report: report)
        let screen = displayStage(display, pipe: pipe, writeback: writeback, report: report)
        var stages: [any Stage] = [source]
        var converter: (device: OwnedVideoDevice, stage: Mem2MemStage)?
        var copier: CopyStage?
        defer { try? converter?.device.close() }
        if let name = settings.mem2mem {
            converter = try mem2memStage(name, inputs: slots.count, into: &shownSlots)
            converter!.stage.consumers = [screen]
            source.consumers = [converter!.stage]
            stages.append(converter!.stage)
            report.sourcePath += " → \(converter!.device.path) (\(converter!.device.capability.card))"
        } else if settings.strategy == .copy {
            for _ in 0..<2 {
                let target = PipelineSlot()
                shownSlots.append(target)
                try display.with { try makeDumb(target, on: $0) }
            }
            let stage = CopyStage(targets: shownSlots) { [self] from, into in
                try display.with {
                    try copy(
                        from, into: into, on: $0, rows: settings.height, rowBytes: settings.width * 4,
                        sourcePitch: pitch)
                }
            }
            stage.consumers = [screen]
            source.consumers = [stage]
            copier = stage
        } else {
            // Every buffer imported before the first frame: one the display cannot take stops the run here.
            for slot in slots { try display.with { try attach(slot, to: $0, pitch: pitch) } }
            source.consumers = [screen]
        }
        for slot in shownSlots where !slot.hasFramebuffer {
            try display.with { try attach(slot, to: $0, pitch: slot.pitch) }
        }

        try converter?.stage.start()
        try source.start()
        logger.debug("\(queue.path): streaming \(queue.indices.count) buffers, \(settings.frames) frames to show")
        defer { try? display.with { try pipe.disable(on: $0) } }
        var tally = RunTally()
        // A software stage (vim2m converts on the CPU) can take seconds a frame on a busy machine.
        try drive(
            stages, sink: screen, drops: { source.report.drops },
            stallTimeout: converter == nil ? .seconds(2) : .seconds(10), tally: &tally, report: &report,
            progress: progress)
        try source.stop()
        try converter?.stage.stop()
        try display.with { try pipe.disable(on: $0) }
        try screen.stop()
        source.copyFigures(into: &report)
        report.copyDisplayFigures(from: screen)
        report.erroneousFrames += converter?.stage.erroneous ?? 0
        report.bytesCopied = (copier?.copies ?? 0) * settings.width * 4 * settings.height
        try converter?.stage.release()
        try queue.release()
        meter([source, converter?.stage, copier, screen], into: &report)
        return finish(report, tally)
    }

    /// The run's figures into its report, judged against the expectations.
    func finish(_ report: PipelineReport, _ tally: RunTally) -> PipelineReport {
        var report = report
        report.framesShown = tally.shown
        report.framesPerSecond = tally.framesPerSecond
        report.latencyMilliseconds = Spread(tally.latencies)
        report.seconds = (ContinuousClock.now - tally.started).seconds
        report.judge()
        logger.info("\(report.summary)")
        return report
    }

    static func monotonicNow() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Duration(secondsComponent: Int64(now.tv_sec), attosecondsComponent: Int64(now.tv_nsec) * 1_000_000_000)
    }

    /// The same in nanoseconds, for per-frame bookkeeping: a `Duration` made, subtracted and
    /// turned into seconds costs some 300 instructions of 128-bit arithmetic (callgrind).
    static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Shows `shown` as frame `number` (the first with a modeset) in place of `previous`, waits
    /// for the flip, verifies the frame through writeback when it is due (against `previous`
    /// too, which stays untouched until then), then runs `afterFlip` (the previous buffer is
    /// free). Returns when the flip event arrived (CLOCK_MONOTONIC).
    func present(
        _ shown: PipelineSlot, previous: PipelineSlot?, number: Int, pitch: Int, display: borrowing DRMDevice,
        pipe: DisplayPipe,
        writeback: PipelineSlot, report: inout PipelineReport, afterFlip: () throws -> Void
    ) throws -> Duration {
        let settings = configuration
        let verify = settings.verifyEvery > 0 && number % settings.verifyEvery == 0
        var framebuffer = try shown.framebufferID()
        if number == settings.injectStuckDisplay, let previous {
            // The injected fault: the display keeps the old framebuffer, as if the flip were lost.
            framebuffer = try previous.framebufferID()
            logger.notice("frame \(number): the flip is replaced by one to the old framebuffer (inject-stuck-display)")
        }
        let writebackID = settings.verifyEvery > 0 ? try writeback.framebufferID() : nil
        let fences: ShownFrame
        var committedAfter: UInt64?  // the vblank count when the flip was committed
        if number == 0 {
            fences = try pipe.show(framebuffer, on: display, writebackInto: writebackID, pageFlipEvent: UInt64(number))
        } else {
            committedAfter = try pipe.vblankCount(on: display)
            fences = try pipe.flip(
                to: framebuffer, on: display, writebackInto: verify ? writebackID : nil, pageFlipEvent: UInt64(number))
        }
        let landed = try waitForFlip(display, UInt64(number))
        if let committedAfter {
            // Committed with the frame in hand: it belongs on the next vblank. (Events carry the
            // counter's low 32 bits.)
            let late = Int(Int32(bitPattern: landed &- UInt32(truncatingIfNeeded: committedAfter) &- 1))
            if late > 0 { report.lateFlips += 1 }
            report.vblanksMissed += max(0, late)
        }
        let flipped = Self.monotonicNow()
        if verify {
            guard try fences.writebackDone(within: .seconds(2)) else {
                throw PipelineError(path: display.path, "the writeback of frame \(number) did not complete within 2 s")
            }
            let check = try check(shown, previous: previous, writeback: writeback, on: display, pitch: pitch)
            report.framesVerified += 1
            if check.differing > 0 {
                report.framesMismatched += 1
                logger.warning("frame \(number): \(check.differing) pixels differ from the writeback")
            }
            if check.blank { report.blankFrames += 1 }
            if check.sameAsPrevious == true {
                report.unchangedFrames += 1
                logger.warning("frame \(number): the same picture as the frame before it")
            }
            if let directory = settings.dumpDirectory {
                try dump(
                    shown, pitch: pitch, pixelFormat: displayFormat.v4l2, on: display,
                    to: "\(directory)/frame-\(String(format: "%04d", number))-shown.png")
                try dump(
                    writeback, pitch: writeback.pitch, pixelFormat: Self.pixelFormat.v4l2, on: display,
                    to: "\(directory)/frame-\(String(format: "%04d", number))-writeback.png")
            }
        }
        try afterFlip()
        try fences.close()
        return flipped
    }

    // MARK: Set-up

    func openSink(_ name: String) throws(KernelError) -> DRMDevice {
        do {
            return name.hasPrefix("/")
                ? try DRMDevice(path: name, kernel: kernel) : try DRMDevice(driver: name, kernel: kernel)
        } catch  where error.errno == .ENOENT && name.hasPrefix("/") {
            let found = ((try? DRMDevice.drivers(kernel: kernel)) ?? []).map { "\($0.path) (\($0.driver))" }
            throw KernelError(
                error.operation, error.errno, path: name,
                reason: "no such display (found: \(found.isEmpty ? "none" : found.joined(separator: ", ")))")
        } catch { throw error.explained("the display (sink) \(name) is not available") }
    }

    func openSource(_ name: String) throws(KernelError) -> V4L2Device {
        let nodes = try V4L2Device.nodes(kernel: kernel)
        if name.hasPrefix("/") {
            do { return try V4L2Device(path: name, kernel: kernel) } catch  where error.errno == .ENOENT {
                throw KernelError(
                    error.operation, error.errno, path: name,
                    reason:
                        "no such capture node (found: \(nodes.isEmpty ? "none" : nodes.map { "\($0.path) (\($0.name))" }.joined(separator: ", ")))"
                )
            }
        }
        let node =
            nodes.first { $0.name == name }
            ?? nodes.first { $0.name.hasPrefix("\(name)-") && $0.name.hasSuffix("-vid-cap") }
        guard let node else {
            throw KernelError(
                "open", .ENOENT, path: KernelPaths.videoSysfsDirectory,
                reason: "no capture node named \(name) (found: \(nodes.map(\.name).joined(separator: ", ")))")
        }
        return try V4L2Device(path: node.path, kernel: kernel)
    }

    /// XR24 at the configured size and rate; vivid's test pattern when asked.
    func configureSource(
        _ camera: borrowing V4L2Device, pixelFormat: V4L2PixelFormat
    ) throws -> (V4L2BufferType, V4L2Format) {
        let settings = configuration
        guard let type = camera.capability.streamingType, !type.isOutput else {
            throw PipelineError(path: camera.path, "\(camera.capability.card) is not a video capture node")
        }
        if camera.capability.driver == "vivid" {
            // Fixed bars, and the frame counter line, so that every frame differs from the one
            // before it and a stale frame on screen cannot pass verification.
            try camera.makeVividDeterministic()
            try camera.setControl(VividControl.osdTextMode, VividControl.osdCountersOnly)
            if let pattern = settings.testPattern {
                try camera.setControl(VividControl.testPattern, Int32(clamping: pattern))
            }
        }
        let format = try setFormat(camera, type: type, pixelFormat)
        if let fps = settings.framesPerSecond {
            // validate() keeps fps within framesPerSecondRange.
            let asked = V4L2Fraction(1, UInt32(clamping: fps))
            let chosen = try camera.setFrameInterval(type, asked)
            if chosen != asked { logger.notice("\(camera.path) runs at \(chosen) s per frame, not 1/\(fps)") }
        }
        return (type, format)
    }

    /// The display's view of a slot's buffer: its own dumb buffer, or the dma-buf imported;
    /// then a framebuffer over it.
    func attach(_ slot: PipelineSlot, to display: borrowing DRMDevice, pitch: Int) throws {
        if let own = slot.ownGEM.take() {
            slot.gem = consume own
        } else {
            slot.gem = try slot.withDmaBuf { buffer throws in try display.importBuffer(buffer) }
        }
        try slot.addFramebuffer { gem throws in try framebuffer(display, gem, pitch: pitch) }
    }

    /// A dumb XRGB8888 buffer of the display with a framebuffer: a copy target, or the
    /// writeback target (always XRGB8888, whatever the plane shows).
    func makeDumb(_ slot: PipelineSlot, on display: borrowing DRMDevice) throws {
        let gem = try display.createDumbBuffer(width: configuration.width, height: configuration.height)
        slot.pitch = gem.pitch ?? configuration.width * 4
        slot.gem = consume gem
        try slot.addFramebuffer { gem throws in
            try framebuffer(display, gem, pitch: slot.pitch, format: Self.pixelFormat.drm)
        }
    }

    /// S_FMT of `pixelFormat` at the configured size; an error when the node settles on anything else.
    @discardableResult
    func setFormat(
        _ device: borrowing V4L2Device, type: V4L2BufferType, _ pixelFormat: V4L2PixelFormat
    ) throws -> V4L2Format {
        let (width, height) = (configuration.width, configuration.height)
        let format = try device.setFormat(
            V4L2Format(type: type, width: UInt32(width), height: UInt32(height), pixelFormat: pixelFormat))
        guard format.pixelFormat == pixelFormat, Int(format.width) == width, Int(format.height) == height else {
            throw PipelineError(
                path: device.path,
                "\(device.capability.card) gives \(format.pixelFormat) \(format.width)x\(format.height) for \(pixelFormat) \(width)x\(height), which the next stage cannot take as is"
            )
        }
        return format
    }

    func framebuffer(
        _ display: borrowing DRMDevice, _ gem: borrowing GEMBuffer, pitch: Int, format: DRMFormat? = nil
    ) throws -> Framebuffer {
        try display.addFramebuffer(
            DRMFramebufferRequest(
                width: UInt32(configuration.width), height: UInt32(configuration.height),
                format: format ?? displayFormat.drm,
                handles: [gem.handle], pitches: [UInt32(pitch)]))
    }

    /// A buffer of `size` bytes from the configured allocator (dumb buffers leave their GEM
    /// buffer in the slot).
    func allocate(size: Int, pitch: Int, on display: borrowing DRMDevice, into slot: PipelineSlot) throws -> DmaBuf {
        switch configuration.allocator {
        case .systemHeap, .reservedHeap, .udmabuf, .auto:
            return try allocateDetached(size: size)
        case .dumb:
            let gem = try display.createDumbBuffer(width: configuration.width, height: configuration.height)
            if let dumbPitch = gem.pitch, dumbPitch != pitch {
                throw PipelineError(
                    path: display.path, "dumb buffer rows are \(dumbPitch) bytes, the source's \(pitch)")
            }
            let dmaBuf = try display.export(gem)
            slot.ownGEM = consume gem
            return dmaBuf
        }
    }

    /// A buffer from a heap or udmabuf: the allocators that need no device of the pipeline.
    func allocateDetached(size: Int) throws -> DmaBuf {
        switch configuration.allocator {
        case .systemHeap, .reservedHeap:
            let heap = try DmaHeap(configuration.allocator == .systemHeap ? "system" : "reserved", kernel: kernel)
            return try heap.allocate(length: size, name: "dmabuf-pipe")
        case .udmabuf:
            let page = kernel.pageSize
            let memfd = try Memfd(kernel: kernel, name: "dmabuf-pipe", length: (size + page - 1) / page * page)
            return try UdmabufDevice(kernel: kernel).create(from: memfd)
        case .dumb:
            throw PipelineError("dumb buffers come from a display; this pipeline has none")
        case .auto:
            throw PipelineError("allocator auto is chosen before the run; this stage was not told the choice")
        }
    }

    /// Waits for the flip-complete event of `userData`; returns the vblank count it landed on.
    func waitForFlip(_ display: borrowing DRMDevice, _ userData: UInt64) throws -> UInt32 {
        // In nanoseconds: no 128-bit `Duration` arithmetic unless a wake-up brought no flip.
        let deadline = Self.monotonicNanoseconds() + 2_000_000_000
        var timeout = Duration.seconds(2)
        while true {
            if let event = try display.readEvents(timeout: timeout).first(where: {
                $0.type == DRMEventType.flipComplete && $0.userData == userData
            }) {
                return event.sequence
            }
            let left = deadline - Self.monotonicNanoseconds()
            guard left > 0 else { break }
            timeout = .nanoseconds(left)
        }
        throw PipelineError(path: display.path, "no flip-complete event within 2 s")
    }

}
