import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// The file sink: every captured frame (XR24 rows) appended to a file, read through the
    /// exported dma-buf under SYNC: a CPU copy, reported as such. Verification here can only
    /// say whether a sampled frame shows a picture (not one flat colour). The frames go to a
    /// temporary file beside the target, renamed over it only when the run went through: a
    /// run that fails or is interrupted leaves the target as it was.
    func runToFile(_ path: String, report: PipelineReport, progress: (Progress) -> Void) throws -> PipelineReport {
        var report = report
        let settings = configuration
        guard settings.strategy == .export, settings.mem2mem == nil else {
            throw PipelineError(
                path: path, "a file sink reads the capture node's exported buffers: use the export strategy, no mem2mem"
            )
        }
        let output = try TemporaryOutput(beside: path)
        defer { output.discard() }
        let camera = try openSource(settings.source)
        let (type, format) = try configureSource(camera, pixelFormat: Self.pixelFormat.v4l2)
        (report.sourcePath, report.sinkPath, report.copying) = (
            "\(camera.path) (\(camera.capability.card))", path, true
        )
        report.format = "XR24 \(settings.width)x\(settings.height)"
        let (pitch, size) = (Int(format.planes[0].bytesPerLine), Int(format.planes[0].sizeImage))
        var slots: [PipelineSlot] = []
        defer { for slot in slots { slot.close(logger) } }
        let queue = try V4L2Queue(device: camera, type: type, memory: .mmap, count: settings.buffers)
        var tally = RunTally()
        for index in queue.indices {
            let slot = PipelineSlot()
            slots.append(slot)
            slot.dmaBuf = try queue.export(index)
            try enqueue(queue, index, nil, &tally)
        }
        try queue.start()
        tally.captureStarted()
        for number in 0..<settings.frames where !interrupted(&report) {
            let frame = try nextFrame(queue, &tally, &report)
            if frame.flags.contains(.error) {
                // A frame the driver flagged is never written as good.
                report.erroneousFrames += 1
                try enqueue(queue, BufferIndex(rawValue: frame.index), nil, &tally)
                continue
            }
            let bytes = try slots[Int(frame.index)].withDmaBuf { buffer throws in
                try buffer.read { Array($0.prefix(size)) }
            }
            try output.write(bytes)
            report.bytesCopied += size
            try enqueue(queue, BufferIndex(rawValue: frame.index), nil, &tally)
            if settings.verifyEvery > 0 && number % settings.verifyEvery == 0 {
                report.framesVerified += 1
                let first = bytes[(min(Self.counterRows, settings.height - 1) * pitch)...].prefix(3)
                let flat = (min(Self.counterRows, settings.height - 1)..<settings.height).allSatisfy { y in
                    stride(from: y * pitch, to: y * pitch + settings.width * 4, by: 4).allSatisfy {
                        bytes[$0..<($0 + 3)].elementsEqual(first)
                    }
                }
                if flat { report.blankFrames += 1 }
            }
            progress(
                tally.shown(after: Self.monotonicNow() - frame.timestamp, of: settings.frames, drops: report.drops))
        }
        try queue.release()
        if report.interruptedBy == nil { try output.commit() }
        return finish(report, tally)
    }
}
