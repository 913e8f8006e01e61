import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// With a mem2mem stage: the capture node's buffers (RGB24, exported) are queued into the
    /// stage's output queue; the stage's capture buffers (RGB565, exported) are what the
    /// display shows. A capture buffer goes back once the stage returns it; a stage buffer
    /// once the display has flipped away from it.
    func runMem2Mem(
        _ name: String, camera: borrowing V4L2Device, type: V4L2BufferType, display: borrowing DRMDevice,
        pipe: DisplayPipe,
        report: PipelineReport, progress: (Progress) -> Void
    ) throws -> PipelineReport {
        var report = report
        let settings = configuration
        guard settings.strategy == .export else {
            throw PipelineError("a mem2mem stage passes buffers along by export: use the export strategy")
        }
        let stage = try V4L2Device(name: name, kernel: kernel)
        guard stage.capability.deviceCaps.contains(.videoMem2Mem) else {
            throw PipelineError(path: stage.path, "\(name) is not a single-planar mem2mem node")
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
        var tally = RunTally()
        for index in source.indices {
            let slot = PipelineSlot()
            captured.append(slot)
            slot.dmaBuf = try source.export(index)
            try enqueue(source, index, nil, &tally)
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
        tally.captureStarted()
        try stageIn.start()
        try stageOut.start()
        defer { try? pipe.disable(on: display) }

        var displayed: BufferIndex?
        // A software stage (vim2m converts on the CPU) can take seconds a frame on a busy machine.
        func waitFor(_ queue: borrowing V4L2Queue, _ what: String) throws -> V4L2BufferInfo {
            guard let buffer = try queue.dequeue(waiting: .seconds(10)) else {
                throw PipelineError(
                    path: queue.path, "no \(what) (VIDIOC_DQBUF) within 10 s after \(tally.shown) shown")
            }
            return buffer
        }
        while tally.shown < settings.frames, !interrupted(&report) {
            let frame = try nextFrame(source, &tally, &report)
            if frame.flags.contains(.error) {
                report.erroneousFrames += 1
                try enqueue(source, BufferIndex(rawValue: frame.index), nil, &tally)
                continue
            }
            try stageIn.enqueue(
                BufferIndex(rawValue: frame.index), dmaBufs: [try captured[Int(frame.index)].withDmaBuf { $0.fd }],
                bytesUsed: [inputSize])
            let converted = try waitFor(stageOut, "converted frame")
            let consumed = try waitFor(stageIn, "returned source buffer")
            try enqueue(source, BufferIndex(rawValue: consumed.index), nil, &tally)
            let index = BufferIndex(rawValue: converted.index)
            if converted.flags.contains(.error) {
                // The stage failed this frame: never shown or verified as good.
                report.erroneousFrames += 1
                try stageOut.enqueue(index)
                continue
            }
            let flipped = try present(
                shown[Int(converted.index)], previous: displayed.map { shown[Int($0.rawValue)] }, number: tally.shown,
                pitch: pitch,
                display: display, pipe: pipe, writeback: writeback, report: &report
            ) { () throws in
                if let previous = displayed { try stageOut.enqueue(previous) }
                displayed = index
            }
            progress(tally.shown(after: flipped - frame.timestamp, of: settings.frames, drops: report.drops))
        }
        try pipe.disable(on: display)
        try stageOut.release()
        try stageIn.release()
        try source.release()
        try stage.close()
        return finish(report, tally)
    }
}
