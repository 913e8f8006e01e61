import DmaBufKernel
import Foundation
import Logging

extension Pipeline {
    /// The pattern source: vivid's 75% bars (or black, test pattern 5) with the frame number
    /// in binary along the top-left corner, written by the CPU (under SYNC) into buffers from
    /// the allocator, each shown once the display has left it. Runs at the display's rate.
    func runPattern(
        display: OwnedDRMDevice, pipe: DisplayPipe, report: PipelineReport, progress: (Progress) -> Void
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
            slot.pitch = pitch
            try display.with { display in
                slot.dmaBuf = try allocate(size: pitch * settings.height, pitch: pitch, on: display, into: slot)
                try attach(slot, to: display, pitch: pitch)
            }
        }
        if settings.verifyEvery > 0 { try display.with { try makeDumb(writeback, on: $0) } }
        defer { try? display.with { try pipe.disable(on: $0) } }
        let source = PatternSourceStage(slots: slots, frames: settings.frames) { [self] slot, number in
            try drawPattern(into: slot, frame: number, pitch: pitch)
        }
        let screen = displayStage(display, pipe: pipe, writeback: writeback, report: report)
        source.consumers = [screen]
        var tally = RunTally()
        try drive([source], sink: screen, drops: { 0 }, tally: &tally, report: &report, progress: progress)
        try display.with { try pipe.disable(on: $0) }
        try screen.stop()
        report.copyDisplayFigures(from: screen)
        meter([source, screen], into: &report)
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
}
