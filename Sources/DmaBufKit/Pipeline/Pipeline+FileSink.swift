import Foundation
import Logging

extension Pipeline {
    /// The file sink: every captured frame (XR24 rows) appended to a file, read through the
    /// exported dma-buf under SYNC: a CPU copy, reported as such. Verification here can only
    /// say whether a sampled frame shows a picture (not one flat colour).
    func runToFile(_ path: String, report: PipelineReport, progress: (Progress) -> Void) throws(KernelError) -> PipelineReport {
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
        let (type, format) = try configureSource(camera, pixelFormat: Self.pixelFormat)
        (report.sourcePath, report.sinkPath, report.copying) = ("\(camera.path) (\(camera.capability.card))", path, true)
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
        for number in 0..<settings.frames {
            let frame = try nextFrame(queue, &tally, &report)
            let bytes = try slots[Int(frame.index)].withDmaBuf { buffer throws(KernelError) in
                try rethrowingKernelErrors("read") { try buffer.read { Array($0.prefix(size)) } }
            }
            do { try file.write(contentsOf: bytes) } catch { throw KernelError("write", .EIO, path: path, reason: "\(error)") }
            report.bytesCopied += size
            try enqueue(queue, BufferIndex(rawValue: frame.index), nil, &tally)
            if settings.verifyEvery > 0 && number % settings.verifyEvery == 0 {
                report.framesVerified += 1
                let first = bytes[(min(Self.counterRows, settings.height - 1) * pitch)...].prefix(3)
                let flat = (min(Self.counterRows, settings.height - 1)..<settings.height).allSatisfy { y in
                    stride(from: y * pitch, to: y * pitch + settings.width * 4, by: 4).allSatisfy { bytes[$0..<($0 + 3)].elementsEqual(first) }
                }
                if flat { report.blankFrames += 1 }
            }
            progress(tally.shown(after: Self.monotonicNow() - frame.timestamp, of: settings.frames, drops: report.drops))
        }
        try queue.release()
        return finish(report, tally)
    }
}
