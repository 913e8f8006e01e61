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
        let queue = OwnedQueue(try V4L2Queue(device: camera, type: type, memory: .mmap, count: settings.buffers))
        try queue.exportAll(into: &slots)
        let source = CaptureSourceStage(
            name: camera.path, queue: queue, slots: slots, frames: settings.frames, report: report)
        let file = FileSinkStage(
            output: output, size: size, pitch: pitch, width: settings.width, height: settings.height,
            verifyEvery: settings.verifyEvery)
        source.consumers = [file]
        try source.start()
        var tally = RunTally()
        try drive(
            [source], sink: file, drops: { source.report.drops }, tally: &tally, report: &report, progress: progress)
        try source.stop()
        try queue.release()
        source.copyFigures(into: &report)
        (report.bytesCopied, report.framesVerified, report.blankFrames) = (
            file.written * size, file.checked, file.blank
        )
        meter([source, file], into: &report)
        if report.interruptedBy == nil { try output.commit() }
        return finish(report, tally)
    }
}
