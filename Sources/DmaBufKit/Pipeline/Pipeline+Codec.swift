import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// Capture → stateful encoder → stateful decoder → display, or → encoder → file: the
    /// capture buffers (XR24, exported) are the encoder's OUTPUT buffers (imported); its
    /// compressed CAPTURE buffers (exported) are the decoder's OUTPUT buffers, or are appended to
    /// the file as the stream; the decoder's CAPTURE buffers (exported) are shown, every n-th
    /// verified through writeback, and compared with the source frame they came from by PSNR.
    /// Both codecs follow the kernel's stateful interface (dev-encoder.rst, dev-decoder.rst):
    /// formats set coded side first, the decoder's CAPTURE side set up on its source-change
    /// event, and each drained with the STOP command until its LAST buffer.
    func runCodec(_ encoderName: String, report: PipelineReport, progress: (Progress) -> Void) throws -> PipelineReport
    {
        var report = report
        let settings = configuration
        let camera = OwnedVideoDevice(try openSource(settings.source))
        defer { try? camera.close() }
        let (captureType, format) = try camera.with { try configureSource($0, pixelFormat: Self.pixelFormat.v4l2) }
        let (pitch, size) = (Int(format.planes[0].bytesPerLine), Int(format.planes[0].sizeImage))
        report.sourcePath = "\(camera.path) (\(camera.capability.card))"
        report.format = "XR24 \(settings.width)x\(settings.height) ⇄ FWHT"

        var slots: [PipelineSlot] = [], encoded: [PipelineSlot] = [], decoded: [PipelineSlot] = []
        let writeback = PipelineSlot()
        defer { for slot in slots + encoded + decoded + [writeback] { slot.close(logger) } }
        let queue = OwnedQueue(
            try camera.with { try V4L2Queue(device: $0, type: captureType, memory: .mmap, count: settings.buffers) })
        try queue.exportAll(into: &slots)
        let source = CaptureSourceStage(
            name: camera.path, queue: queue, slots: slots, frames: settings.frames, report: report)

        let encoder = try encoderStage(encoderName, inputs: slots.count, frameSize: UInt32(size), into: &encoded)
        defer { try? encoder.node.close() }
        source.consumers = [encoder]
        report.sourcePath += " → \(encoder.node.path) (\(encoder.node.capability.card) encoder)"
        var stages: [any Stage] = [source, encoder]

        var file: (output: TemporaryOutput, stage: FileSinkStage)?
        defer { file?.output.discard() }
        var display: (device: OwnedDRMDevice, pipe: DisplayPipe, screen: DisplayStage)?
        defer { try? display?.device.close() }
        var decoder: Mem2MemStage?
        defer { try? decoder?.node.close() }
        var quality: PSNRCheck?
        let sink: any FrameArrivals
        if settings.sink.hasPrefix(PipelineConfiguration.fileSinkPrefix) {
            let path = String(settings.sink.dropFirst(PipelineConfiguration.fileSinkPrefix.count))
            let output = try TemporaryOutput(beside: path)
            let stage = FileSinkStage(
                output: output, size: size, pitch: pitch, width: settings.width, height: settings.height, verifyEvery: 0
            )
            file = (output, stage)
            encoder.consumers = [stage]
            sink = stage
            (report.sinkPath, report.copying) = (path, true)
        } else {
            let (device, pipe) = try openDisplay()
            let screen = displayStage(device, pipe: pipe, writeback: writeback, report: report)
            display = (device, pipe, screen)
            let stage = try decoderStage(
                settings.decoder!, inputs: encoded.count, display: device, decodedSlots: { decoded = $0 })
            decoder = stage
            stage.consumers = [screen]
            if settings.verifyEvery > 0 {
                // The source frames kept for the PSNR of what comes out of the decoder.
                let recorder = FrameRecorder(length: size, capacity: 2 * settings.buffers + 8)
                source.consumers.append(recorder)
                let check = PSNRCheck(
                    recorder: recorder, width: settings.width, height: settings.height, pitch: pitch,
                    every: settings.verifyEvery)
                quality = check
                stage.consumers.append(check)
            }
            encoder.consumers = [stage]
            stages.append(stage)
            sink = screen
            report.sinkPath =
                "\(stage.node.path) (\(stage.node.capability.card) decoder) → \(device.path) (\(device.driver))"
            if settings.verifyEvery > 0 { try device.with { try makeDumb(writeback, on: $0) } }
        }

        try decoder?.start()
        try encoder.start()
        try source.start()
        defer { try? display.map { display in try display.device.with { try display.pipe.disable(on: $0) } } }
        var tally = RunTally()
        // A codec in software (vicodec) takes a while per frame on a busy machine.
        try drive(
            stages, sink: sink, drops: { source.report.drops }, stallTimeout: .seconds(10), tally: &tally,
            report: &report, progress: progress)
        try source.stop()
        try encoder.stop()
        try decoder?.stop()
        if let display {
            try display.device.with { try display.pipe.disable(on: $0) }
            try display.screen.stop()
            report.copyDisplayFigures(from: display.screen)
        }
        source.copyFigures(into: &report)
        report.erroneousFrames += encoder.erroneous + (decoder?.erroneous ?? 0)
        if let quality {
            report.psnrDecibels = Spread(quality.decibels)
            if quality.unmatched > 0 {
                report.notes.append("\(quality.unmatched) decoded frames came after their source frame was let go")
            }
        }
        report.notes.append(
            "encoder: \(encoder.taken) frames in, \(encoder.made) compressed out"
                + (decoder.map { ", decoder: \($0.taken) in, \($0.made) decoded out" } ?? "")
                + (file.map { ", \($0.stage.bytesWritten / 1024) KiB of stream written" } ?? "")
                + "; drained by the STOP command to the LAST buffer: encoder \(encoder.drained ? "yes" : "no")"
                + (decoder.map { ", decoder \($0.drained ? "yes" : "no")" } ?? ""))
        meter([source, encoder, decoder, display?.screen, file?.stage], into: &report)
        for slot in slots + encoded + decoded { slot.close(logger) }
        try encoder.release()
        try decoder?.release()
        try queue.release()
        if let file {
            report.bytesCopied = file.stage.bytesWritten
            if report.interruptedBy == nil { try file.output.commit() }
        }
        return finish(report, tally)
    }

    /// The stateful encoder `name`: CAPTURE (coded) FWHT first, its size read-only (it follows
    /// OUTPUT's), then OUTPUT XR24 at the run's size (dev-encoder.rst, "Initialization");
    /// OUTPUT imports the capture buffers, CAPTURE's own buffers are exported into slots
    /// appended to `slots`.
    private func encoderStage(
        _ name: String, inputs: Int, frameSize: UInt32, into slots: inout [PipelineSlot]
    ) throws -> Mem2MemStage {
        let node = try codecNode(name, role: .encoder)
        do {
            let settings = configuration
            try node.with { node in
                let coded = try node.setFormat(
                    V4L2Format(
                        type: .videoCapture, width: UInt32(settings.width), height: UInt32(settings.height),
                        pixelFormat: .fwht))
                guard coded.pixelFormat == .fwht else {
                    throw PipelineError(path: node.path, "\(name) codes \(coded.pixelFormat), not FWHT")
                }
                try setFormat(node, type: .videoOutput, Self.pixelFormat.v4l2)
                let stream = try node.format(.videoCapture)
                guard Int(stream.width) == settings.width, Int(stream.height) == settings.height else {
                    throw PipelineError(
                        path: node.path,
                        "\(name) codes \(stream.width)x\(stream.height) for \(settings.width)x\(settings.height) frames"
                    )
                }
            }
            let input = OwnedQueue(
                try node.with { try V4L2Queue(device: $0, type: .videoOutput, memory: .dmabuf, count: inputs) })
            let output = OwnedQueue(
                try node.with { try V4L2Queue(device: $0, type: .videoCapture, memory: .mmap, count: 4) })
            let first = slots.count
            try output.exportAll(into: &slots)
            return Mem2MemStage(
                name: node.path, node: node, input: input, output: output, slots: Array(slots[first...]),
                bytesUsed: frameSize, frames: configuration.frames, codec: .encoder)
        } catch {
            try? node.close()
            throw error
        }
    }

    /// The stateful decoder `name`: OUTPUT FWHT at the run's size, importing the encoder's
    /// buffers; its CAPTURE side is set up when the source change says what the stream is
    /// (dev-decoder.rst, "Capture setup"): XR24 at the stream's size, which must be the run's.
    private func decoderStage(
        _ name: String, inputs: Int, display: OwnedDRMDevice, decodedSlots: @escaping ([PipelineSlot]) -> Void
    ) throws -> Mem2MemStage {
        let settings = configuration
        let node = try codecNode(name, role: .decoder)
        do {
            let coded = try node.with { try setFormat($0, type: .videoOutput, .fwht) }
            let input = OwnedQueue(
                try node.with { try V4L2Queue(device: $0, type: .videoOutput, memory: .dmabuf, count: inputs) })
            return Mem2MemStage(
                name: node.path, node: node, input: input, output: nil, slots: [], bytesUsed: coded.planes[0].sizeImage,
                frames: settings.frames, codec: .decoder
            ) { [self] stream in
                guard Int(stream.width) == settings.width, Int(stream.height) == settings.height else {
                    throw PipelineError(
                        path: node.path,
                        "the stream is \(stream.width)x\(stream.height) (its source change said), not \(settings.width)x\(settings.height)"
                    )
                }
                let format = try node.with { try setFormat($0, type: .videoCapture, Self.pixelFormat.v4l2) }
                let queue = OwnedQueue(
                    try node.with {
                        try V4L2Queue(device: $0, type: .videoCapture, memory: .mmap, count: settings.buffers)
                    })
                var slots: [PipelineSlot] = []
                defer { decodedSlots(slots) }
                try queue.exportAll(into: &slots)
                for slot in slots { slot.pitch = Int(format.planes[0].bytesPerLine) }
                logger.debug(
                    "\(node.path): source change to \(stream.pixelFormat) \(stream.width)x\(stream.height); decoding into XR24"
                )
                return (queue, slots)
            }
        } catch {
            try? node.close()
            throw error
        }
    }

    /// A codec node by name, checked to be a single-planar mem2mem node.
    private func codecNode(_ name: String, role: V4L2CodecRole) throws -> OwnedVideoDevice {
        let node = OwnedVideoDevice(try V4L2Device(name: name, kernel: kernel))
        guard node.capability.deviceCaps.contains(.videoMem2Mem) else {
            try? node.close()
            throw PipelineError(path: node.path, "\(name) is not a single-planar mem2mem node (a stateful \(role))")
        }
        return node
    }
}
