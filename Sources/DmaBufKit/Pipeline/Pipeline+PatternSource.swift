import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// The pattern source: vivid's 75% bars (or black, test pattern 5) with the frame number
    /// in binary along the top-left corner, written by the CPU (under SYNC) into buffers from
    /// the allocator, each shown once the display has left it. Runs at the display's rate.
    func runPattern(
        display: borrowing DRMDevice, pipe: DisplayPipe, report: PipelineReport, progress: (Progress) -> Void
    ) throws -> PipelineReport {
        var report = report
        let settings = configuration
        guard settings.strategy == .import else {
            throw PipelineError("the pattern source writes into buffers from the allocator: use the import strategy")
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

        var tally = RunTally()
        for number in 0..<settings.frames where !interrupted(&report) {
            // With two or more buffers the one written next is never the one on screen.
            let slot = slots[number % slots.count]
            let written = Self.monotonicNow()
            try drawPattern(into: slot, frame: number, pitch: pitch)
            let previous = number > 0 ? slots[(number - 1) % slots.count] : nil
            let flipped = try present(
                slot, previous: previous, number: number, pitch: pitch, display: display, pipe: pipe,
                writeback: writeback, report: &report
            ) {}
            progress(tally.shown(after: flipped - written, of: settings.frames, drops: 0))
        }
        try pipe.disable(on: display)
        return finish(report, tally)
    }

    /// vivid's 75% bars in XR24 (black for test pattern 5) and, along the top-left corner, the
    /// frame number, one 8x8 block per bit: a stale buffer cannot pass for a new one.
    func drawPattern(into slot: PipelineSlot, frame number: Int, pitch: Int) throws {
        let settings = configuration
        let black = settings.testPattern == 5
        let row = (0..<settings.width).flatMap { x -> [UInt8] in
            let bar = black ? (red: 0, green: 0, blue: 0) : ColourBars.seventyFivePercent[x * 8 / settings.width]
            return [bar.blue, bar.green, bar.red, 0]
        }
        try slot.withDmaBuf { buffer throws in
            try buffer.write { view in
                for y in 0..<settings.height {
                    row.withUnsafeBytes {
                        view.baseAddress!.advanced(by: y * pitch).copyMemory(
                            from: $0.baseAddress!, byteCount: row.count)
                    }
                }
                for bit in 0..<min(16, settings.width / 8) where !black {
                    let value: UInt8 = number >> bit & 1 == 1 ? 0xff : 0x00
                    for y in 0..<8 {
                        (view.baseAddress! + y * pitch + bit * 32).initializeMemory(
                            as: UInt8.self, repeating: value, count: 32)
                    }
                }
            }
        }
    }

    /// The V4L2 output sink: the pattern, drawn into buffers from the allocator, queued into
    /// an output node (DMABUF) and written again once the node gives each back. What the node
    /// does with a frame cannot be seen from here, so nothing is verified.
    func runToVideoOutput(_ node: String, report: PipelineReport, progress: (Progress) -> Void) throws -> PipelineReport
    {
        var report = report
        let settings = configuration
        guard settings.source == PipelineConfiguration.patternSource, settings.strategy == .import,
            settings.allocator != .dumb
        else {
            throw PipelineError(
                "a V4L2 output sink runs with the pattern source, the import strategy and a heap or udmabuf allocator")
        }
        let output = try V4L2Device(name: node, kernel: kernel)
        guard let type = output.capability.streamingType, type.isOutput else {
            throw PipelineError(path: output.path, "\(node) is not a video output node")
        }
        let format = try setFormat(output, type: type, Self.pixelFormat.v4l2)
        (report.sourcePath, report.sinkPath) = (
            "pattern in \(settings.allocator.rawValue) buffers", "\(output.path) (\(output.capability.card))"
        )
        report.format = "XR24 \(settings.width)x\(settings.height)"
        let (pitch, size) = (Int(format.planes[0].bytesPerLine), format.planes[0].sizeImage)
        var slots: [PipelineSlot] = []
        defer { for slot in slots { slot.close(logger) } }
        let queue = try V4L2Queue(device: output, type: type, memory: .dmabuf, count: settings.buffers)
        for _ in queue.indices {
            let slot = PipelineSlot()
            slots.append(slot)
            slot.dmaBuf = try allocateDetached(size: Int(size))
        }
        try queue.start()
        var tally = RunTally()
        var written: [Duration] = Array(repeating: .zero, count: slots.count)
        var inFlight = 0
        func takeBack(_ queue: borrowing V4L2Queue) throws {
            guard let done = try queue.dequeue(waiting: .seconds(2)) else {
                throw PipelineError(
                    path: output.path, "no buffer back (VIDIOC_DQBUF) within 2 s after \(tally.shown) frames")
            }
            inFlight -= 1
            if done.flags.contains(.error) { report.erroneousFrames += 1 }
            progress(tally.shown(after: Self.monotonicNow() - written[Int(done.index)], of: settings.frames, drops: 0))
        }
        var sent = 0
        for number in 0..<settings.frames where !interrupted(&report) {
            sent += 1
            if number >= slots.count { try takeBack(queue) }  // the oldest: the node is done with it
            let index = number % slots.count
            try drawPattern(into: slots[index], frame: number, pitch: pitch)
            written[index] = Self.monotonicNow()
            try queue.enqueue(
                BufferIndex(rawValue: UInt32(index)), dmaBufs: [try slots[index].withDmaBuf { $0.fd }],
                bytesUsed: [size])
            inFlight += 1
        }
        // Like a display, vivid's output keeps its last frame until another comes (a buffer
        // leaves only while one more is pending): STREAMOFF returns that one.
        while inFlight > 1 { try takeBack(queue) }
        try queue.release()
        if sent > 0 {
            progress(
                tally.shown(
                    after: Self.monotonicNow() - written[(sent - 1) % slots.count], of: settings.frames, drops: 0))
        }
        return finish(report, tally)
    }
}
