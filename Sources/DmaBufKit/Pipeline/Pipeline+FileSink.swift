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
}
