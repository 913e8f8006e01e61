import DmaBufKernel

/// A KMS plane as a sink: each frame is imported (PRIME, AddFB2; once per buffer), flipped to
/// and, when due, verified through writeback (`Pipeline.present`, which waits for the flip);
/// the frame shown before it is released once the display has flipped away from it. The frame
/// on screen stays held until `stop`.
final class DisplayStage: FrameConsumer, FrameArrivals, Metered {
    let display: OwnedDRMDevice
    private let attach: (PipelineSlot) throws -> Void
    private let present: (Frame, Frame?, Int, inout PipelineReport, () throws -> Void) throws -> Duration
    /// What the display's side found: flips, verification. (Per-frame state of one thread:
    /// `@exclusivity(unchecked)` spares the runtime's access checks, see `StageMeter`.)
    @exclusivity(unchecked) var report: PipelineReport
    @exclusivity(unchecked) private var shown: Frame?
    @exclusivity(unchecked) private(set) var count = 0
    /// From each frame's timestamp to its flip event, since the last `takeLatencies`.
    @exclusivity(unchecked) private var latencies: [Duration] = []
    let meter: StageMeter

    /// `attach(slot)` gives the display its own view of a buffer; `present(frame, previous,
    /// number, report, afterFlip)` shows it and returns when the flip landed.
    init(
        display: OwnedDRMDevice, report: PipelineReport, attach: @escaping (PipelineSlot) throws -> Void,
        present: @escaping (Frame, Frame?, Int, inout PipelineReport, () throws -> Void) throws -> Duration
    ) {
        (self.display, self.report, self.attach, self.present) = (display, report, attach, present)
        meter = StageMeter("display \(display.path)")
    }

    var canAccept: Bool { true }

    func accept(_ frame: Frame) throws {
        if !frame.slot.hasFramebuffer { try attach(frame.slot) }
        meter.took(frame)
        let previous = shown
        let flipped = try present(frame, previous, count, &report) { [unowned self] in
            shown = frame
            if let previous { try self.letGo(previous) }  // the display has left it
        }
        latencies.append(flipped - frame.timestamp)
        count += 1
    }

    private func letGo(_ frame: Frame) throws {
        meter.letGo(frame)
        meter.passedOn()
        try frame.release()
    }

    func takeLatencies(_ each: (Duration) -> Void) {
        latencies.forEach(each)
        latencies.removeAll(keepingCapacity: true)
    }

    /// The display lets go of the frame on screen (after the caller turned it off).
    func stop() throws {
        if let shown { try letGo(shown) }
        shown = nil
    }
}
