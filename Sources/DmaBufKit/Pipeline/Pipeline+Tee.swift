import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// A tee: every captured buffer (exported) goes to the display and to a V4L2 output node in
    /// the same turn, and back to the capture queue only once both are done with it (the display
    /// flipped away from it, the output gave it back at DQBUF). Both sides are verified: the
    /// display through writeback, the output through its loopback. Before streaming, every
    /// buffer is given to both importers (PRIME and AddFB2 on the display, a QBUF on the output
    /// taken back by STREAMOFF), so a buffer either cannot take is refused with the reason
    /// before the first frame.
    func runTee(_ node: String, report: PipelineReport, progress: (Progress) -> Void) throws -> PipelineReport {
        var report = report
        let settings = configuration
        let (display, pipe) = try openDisplay()
        defer { try? display.close() }
        let camera = OwnedVideoDevice(try openSource(settings.source))
        defer { try? camera.close() }
        let (captureType, format) = try camera.with { try configureSource($0, pixelFormat: Self.pixelFormat.v4l2) }
        let (pitch, size) = (Int(format.planes[0].bytesPerLine), format.planes[0].sizeImage)
        report.sourcePath = "\(camera.path) (\(camera.capability.card))"
        report.format = "XR24 \(settings.width)x\(settings.height)"
        return try withOutputNode(node, verify: settings.verifyEvery > 0) { output, outputType, loop in
            try output.with { try setFormat($0, type: outputType, Self.pixelFormat.v4l2) }
            report.sinkPath = "\(display.path) (\(display.driver)) + \(output.path) (\(output.capability.card))"
            var slots: [PipelineSlot] = []
            var loopSlots: [PipelineSlot] = []
            let writeback = PipelineSlot()
            defer { for slot in slots + loopSlots + [writeback] { slot.close(logger) } }
            let queue = OwnedQueue(
                try camera.with {
                    try V4L2Queue(device: $0, type: captureType, memory: .mmap, count: settings.buffers)
                })
            let outputQueue = OwnedQueue(
                try output.with {
                    try V4L2Queue(device: $0, type: outputType, memory: .dmabuf, count: queue.indices.count)
                })
            try queue.exportAll(into: &slots)
            for slot in slots { slot.pitch = pitch }
            try refuseWhatEitherCannotImport(
                slots, display: display, output: outputQueue, pitch: pitch, bytesUsed: size)
            if settings.verifyEvery > 0 { try display.with { try makeDumb(writeback, on: $0) } }

            let source = CaptureSourceStage(
                name: camera.path, queue: queue, slots: slots, frames: settings.frames, report: report)
            let screen = displayStage(display, pipe: pipe, writeback: writeback, report: report)
            // The output keeps two of the capture buffers free for the driver, as the display
            // holds at most two (the one on screen, the one flipped to).
            let sink = VideoOutputStage(
                name: output.path, queue: outputQueue, bytesUsed: size, frames: settings.frames,
                maximumInFlight: max(1, slots.count - 4))
            source.consumers = [screen, sink]
            var check: LoopbackCheckStage?
            if let (capture, loop) = loop {
                let (recorder, stage, checkSlots) = try loopCheck(
                    capture, loop, frameBytes: Int(size), sentBuffers: slots.count
                ) { source.isFinished }
                loopSlots = checkSlots
                source.consumers.append(recorder)
                check = stage
                report.sinkPath += " ⟲ \(capture.path) by \(loop.switchedBy)"
            }
            try check?.start()
            try sink.start()
            try source.start()
            defer { try? display.with { try pipe.disable(on: $0) } }
            var tally = RunTally()
            try drive(
                [source, sink] + (check.map { [$0] } ?? []), sink: screen, drops: { source.report.drops },
                stallTimeout: .seconds(15), tally: &tally, report: &report, progress: progress)
            try source.stop()
            try display.with { try pipe.disable(on: $0) }
            try screen.stop()
            try sink.stop()
            try check?.stop()
            source.copyFigures(into: &report)
            report.copyDisplayFigures(from: screen)
            if let check, let (_, loop) = loop {
                var looped = report
                judgeLoop(check, loop, into: &looped)
                report.notes += looped.notes.dropFirst(report.notes.count)
                report.failures += looped.failures.dropFirst(report.failures.count)
                report.framesVerified += looped.framesVerified
                report.framesMismatched += looped.framesMismatched
                report.verifiedAgainst = "what the display wrote back, or every frame sent (through the output's loop)"
            }
            report.notes.append(
                "tee: \(screen.count) frames on \(display.driver), \(sink.taken) on \(output.capability.card); a buffer went back to the capture queue only once both had released it"
            )
            meter([source, screen, sink], into: &report)
            try outputQueue.release()
            try source.queue.release()
            try check?.queue.release()
            return finish(report, tally)
        }
    }

    /// Before streaming: every buffer imported by the display (PRIME, AddFB2) and queued on the
    /// output once (then taken back by STREAMOFF), so that a buffer either side cannot take
    /// stops the run with that side's reason before the first frame.
    private func refuseWhatEitherCannotImport(
        _ slots: [PipelineSlot], display: OwnedDRMDevice, output: OwnedQueue, pitch: Int, bytesUsed: UInt32
    ) throws {
        for (number, slot) in slots.enumerated() {
            do { try display.with { try attach(slot, to: $0, pitch: pitch) } } catch {
                throw PipelineError(
                    path: display.path, "the tee's display cannot take capture buffer \(number): \(error)")
            }
            let fd = try slot.withDmaBuf { $0.fd }
            do {
                try output.with {
                    try $0.enqueue(BufferIndex(rawValue: UInt32(number)), dmaBufs: [fd], bytesUsed: [bytesUsed])
                }
            } catch {
                try? output.with { try $0.stop() }
                throw PipelineError(
                    path: output.path, "the tee's output cannot take capture buffer \(number): \(error)")
            }
        }
        try output.with { try $0.stop() }  // STREAMOFF gives every buffer back, unused
    }
}
