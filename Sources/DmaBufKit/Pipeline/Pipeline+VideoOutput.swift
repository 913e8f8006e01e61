import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// The V4L2 output sink: frames from the pattern (drawn into buffers from the allocator) or
    /// from a capture node (its buffers, exported), queued into an output node (DMABUF). With
    /// verification on, the output's frames come back through the video loopback of the capture
    /// node on the same device (`VideoLoopback`), at its timings' size, and every frame captured
    /// there must be one sent, byte for byte, in order. A graph of stages run by `StageRunner`:
    /// source → [output, recorder], and the loop's capture checked against the recorder.
    func runToVideoOutput(
        _ node: String, report: PipelineReport, progress: (Progress) -> Void
    ) throws
        -> PipelineReport
    {
        let settings = configuration
        if settings.source == PipelineConfiguration.patternSource {
            guard settings.strategy == .import, settings.allocator != .dumb else {
                throw PipelineError(
                    "the pattern feeds an output node through buffers from a heap or udmabuf: use the import strategy with one of those allocators"
                )
            }
        } else if settings.strategy != .export {
            throw PipelineError(
                "a capture node feeds an output node by export (the output imports the capture buffers): use the export strategy"
            )
        }
        return try withOutputNode(node, verify: settings.verifyEvery > 0) { output, type, loop in
            try runStages(output: output, type: type, loop: loop, report: report, progress: progress)
        }
    }

    /// Opens the output node `node` and, to verify, connects its loop (refusing a size other
    /// than the loop's timings) for `body`; the loop is switched back afterwards.
    func withOutputNode<R>(
        _ node: String, verify: Bool,
        _ body: (OwnedVideoDevice, V4L2BufferType, (capture: OwnedVideoDevice, loop: VideoLoopback)?) throws -> R
    ) throws -> R {
        let settings = configuration
        let output = OwnedVideoDevice(try V4L2Device(name: node, kernel: kernel))
        defer { try? output.close() }
        guard let type = output.capability.streamingType, type.isOutput, !type.isMultiplanar else {
            throw PipelineError(path: output.path, "\(node) is not a single-planar video output node")
        }
        guard verify else { return try body(output, type, nil) }
        let capture = try loopCapture(of: output)
        defer { try? capture.close() }
        let loop = try output.with { output in
            try capture.with { try VideoLoopback.connect(output: output, capture: $0) }
        }
        defer {
            do {
                try output.with { output in try capture.with { try loop.disconnect(output: output, capture: $0) } }
            } catch {
                logger.warning("switching the loopback back: \(error)")
            }
        }
        logger.debug(
            "\(output.path) \(loop.output.name) → \(capture.path) \(loop.input.name) by \(loop.switchedBy), \(loop.width)x\(loop.height)"
        )
        guard loop.width == settings.width && loop.height == settings.height else {
            throw PipelineError(
                path: capture.path,
                "the loop from \(loop.output.name) to \(loop.input.name) runs at \(loop.width)x\(loop.height) (their DV timings): use that size to verify, or verify-every 0"
            )
        }
        return try body(output, type, (capture, loop))
    }

    /// The capture node of the same device as `output` (the same bus): where its loop comes back.
    private func loopCapture(of output: OwnedVideoDevice) throws -> OwnedVideoDevice {
        for node in try V4L2Device.nodes(kernel: kernel) where node.path != output.path {
            let candidate = try V4L2Device(path: node.path, kernel: kernel)
            if candidate.capability.busInfo == output.capability.busInfo,
                candidate.capability.driver == output.capability.driver,
                candidate.capability.streamingType == .videoCapture
            {
                return OwnedVideoDevice(candidate)
            }
            try candidate.close()
        }
        throw PipelineError(
            path: output.path,
            "no capture node shares \(output.capability.busInfo) with it, so nothing can show what it sends: use verify-every 0"
        )
    }

    private func runStages(
        output: OwnedVideoDevice, type: V4L2BufferType, loop: (capture: OwnedVideoDevice, loop: VideoLoopback)?,
        report: PipelineReport, progress: (Progress) -> Void
    ) throws -> PipelineReport {
        var report = report
        let settings = configuration
        let format = try output.with { try setFormat($0, type: type, Self.pixelFormat.v4l2) }
        let size = format.planes[0].sizeImage
        report.sinkPath = "\(output.path) (\(output.capability.card))"
        report.format = "XR24 \(settings.width)x\(settings.height)"
        var slots: [PipelineSlot] = []
        var loopSlots: [PipelineSlot] = []
        defer { for slot in slots + loopSlots { slot.close(logger) } }

        // The source: the pattern in buffers from the allocator, or a capture node's own.
        let source: any Stage
        var camera: OwnedVideoDevice?
        defer { try? camera?.close() }
        var captureStage: CaptureSourceStage?
        if settings.source == PipelineConfiguration.patternSource {
            report.sourcePath = "pattern in \(settings.allocator.rawValue) buffers"
            for _ in 0..<settings.buffers {
                let slot = PipelineSlot()
                slots.append(slot)
                slot.dmaBuf = try allocateDetached(size: Int(size))
            }
            let pitch = Int(format.planes[0].bytesPerLine)
            source = PatternSourceStage(slots: slots, frames: settings.frames) { [self] slot, number in
                try drawPattern(into: slot, frame: number, pitch: pitch)
            }
        } else {
            let device = OwnedVideoDevice(try openSource(settings.source))
            camera = device
            let (captureType, _) = try device.with { try configureSource($0, pixelFormat: Self.pixelFormat.v4l2) }
            report.sourcePath = "\(device.path) (\(device.capability.card))"
            let queue = OwnedQueue(
                try device.with { try V4L2Queue(device: $0, type: captureType, memory: .mmap, count: settings.buffers) }
            )
            try queue.exportAll(into: &slots)
            let stage = CaptureSourceStage(
                name: device.path, queue: queue, slots: slots, frames: settings.frames, report: report)
            captureStage = stage
            source = stage
        }
        let outputQueue = OwnedQueue(
            try output.with { try V4L2Queue(device: $0, type: type, memory: .dmabuf, count: slots.count) })
        // A capture source keeps two buffers to fill (an output holds its last frame, and at
        // least one more while it shows it); the pattern waits for whatever comes back.
        let sink = VideoOutputStage(
            name: output.path, queue: outputQueue, bytesUsed: size, frames: settings.frames,
            maximumInFlight: captureStage == nil ? slots.count : max(2, slots.count - 2))
        var consumers: [any FrameConsumer] = [sink]

        // The check: the loop's capture, compared with copies of the frames sent.
        var check: LoopbackCheckStage?
        if let (capture, loop) = loop {
            let (recorder, stage, checkSlots) = try loopCheck(
                capture, loop, frameBytes: Int(size), sentBuffers: slots.count
            ) { source.isFinished }
            loopSlots = checkSlots
            consumers.append(recorder)
            check = stage
            report.sinkPath += " ⟲ \(capture.path) by \(loop.switchedBy)"
        }
        switch source {
        case let pattern as PatternSourceStage: pattern.consumers = consumers
        case let capture as CaptureSourceStage: capture.consumers = consumers
        default: break
        }

        try check?.start()
        try sink.start()
        try captureStage?.start()
        // The loop's check gives up 10 s after the last frame was sent without seeing it; the
        // run stalls first only when no frame moved on for longer.
        var tally = RunTally()
        try drive(
            [source, sink] + (check.map { [$0] } ?? []), sink: sink, drops: { captureStage?.report.drops ?? 0 },
            stallTimeout: .seconds(15), tally: &tally, report: &report, progress: progress)
        try captureStage?.stop()
        try sink.stop()
        reportArrivals(at: sink, drops: report.drops, tally: &tally, progress: progress)
        try check?.stop()
        captureStage?.copyFigures(into: &report)
        report.erroneousFrames += sink.erroneous
        if let check, let (_, loop) = loop {
            judgeLoop(check, loop, into: &report)
        }
        meter([source as? any Metered, sink], into: &report)
        for queue in [outputQueue] { try queue.release() }
        try captureStage?.queue.release()
        try check?.queue.release()
        return finish(report, tally)
    }

    /// The loop's check: the capture node in XR24 with nothing drawn over the picture, its
    /// buffers exported (returned for the caller to close), and the recorder the frames sent go
    /// to.
    func loopCheck(
        _ capture: OwnedVideoDevice, _ loop: VideoLoopback, frameBytes: Int, sentBuffers: Int,
        sourceFinished: @escaping () -> Bool
    ) throws -> (recorder: FrameRecorder, check: LoopbackCheckStage, slots: [PipelineSlot]) {
        try capture.with { node in
            try setFormat(node, type: .videoCapture, Self.pixelFormat.v4l2)
            if node.capability.driver == "vivid" {
                try node.setControl(VividControl.osdTextMode, VividControl.osdNone)
            }
        }
        let queue = OwnedQueue(
            try capture.with {
                try V4L2Queue(device: $0, type: .videoCapture, memory: .mmap, count: configuration.buffers)
            })
        var slots: [PipelineSlot] = []
        do {
            try queue.exportAll(into: &slots)
        } catch {
            for slot in slots { slot.close(logger) }
            throw error
        }
        let recorder = FrameRecorder(length: frameBytes, capacity: sentBuffers + 8)
        let check = LoopbackCheckStage(
            name: "\(capture.path) (loop from \(loop.output.name))", queue: queue, slots: slots, recorder: recorder,
            sourceFinished: sourceFinished)
        return (recorder, check, slots)
    }

    /// What the loop showed, into the report: frames compared and mismatched, and failures for
    /// a loop that never carried a frame sent or lost the last one.
    func judgeLoop(_ check: LoopbackCheckStage, _ loop: VideoLoopback, into report: inout PipelineReport) {
        report.framesVerified = check.compared
        report.verifiedAgainst = "every frame sent (or come back older than one seen)"
        report.framesMismatched = check.mismatched + check.outOfOrder
        let latency = Spread(check.firstSeen.values.map { $0.seconds * 1000 })
        report.notes.append(
            "loop \(loop.output.name) → \(loop.input.name): \(check.firstSeen.count) of \(report.configuration.frames) frames sent seen, \(check.compared) captured frames compared after \(check.warmUp) of warm-up"
                + (latency.map { String(format: ", sent → seen %.1f/%.1f/%.1f ms", $0.minimum, $0.median, $0.maximum) }
                    ?? ""))
        if check.firstSeen.isEmpty {
            report.failures.append(
                "none of the frames sent came back on the loop's capture (\(check.warmUp) frames of its own picture): the loop does not carry the output"
            )
        } else if check.gaveUp, let last = check.recorder.last {
            report.failures.append(
                "the loop's capture never showed frame \(last), the last sent (the last it showed: \(check.lastSeen.map(String.init) ?? "none"))"
            )
        }
        if check.outOfOrder > 0 {
            report.failures.append("\(check.outOfOrder) captured frames came back older than one seen before them")
        }
    }
}
