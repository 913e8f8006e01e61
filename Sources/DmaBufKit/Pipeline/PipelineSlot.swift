import DmaBufKernel
import Foundation
import Logging

/// One buffer of a run and what each side holds of it; released in order (framebuffer, GEM
/// handle, dma-buf) when the run ends, however it ends.
final class PipelineSlot {
    var dmaBuf: DmaBuf?
    var gem: GEMBuffer?
    /// A dumb buffer made for this slot, before the display's framebuffer takes it.
    var ownGEM: GEMBuffer?
    var framebuffer: Framebuffer?
    var pitch = 0

    var hasFramebuffer: Bool {
        switch framebuffer {
        case .some: true
        case .none: false
        }
    }

    var hasDmaBuf: Bool {
        switch dmaBuf {
        case .some: true;
        case .none: false
        }
    }

    func withDmaBuf<R: ~Copyable>(_ body: (borrowing DmaBuf) throws -> R) throws -> R {
        switch dmaBuf {
        case .some(let buffer): return try body(buffer)
        case .none: throw InternalError("a pipeline slot has no dma-buf")
        }
    }

    func withGEM<R: ~Copyable>(_ body: (borrowing GEMBuffer) throws -> R) throws -> R {
        switch gem {
        case .some(let buffer): return try body(buffer)
        case .none: throw InternalError("a pipeline slot has no GEM handle")
        }
    }

    func addFramebuffer(_ make: (borrowing GEMBuffer) throws -> Framebuffer) throws {
        framebuffer = try withGEM(make)
    }

    func framebufferID() throws -> FramebufferID {
        switch framebuffer {
        case .some(let framebuffer): return framebuffer.id
        case .none: throw InternalError("a pipeline slot has no framebuffer")
        }
    }

    func close(_ logger: Logger) {
        do {
            if let framebuffer = framebuffer.take() { try framebuffer.remove() }
            if let gem = gem.take() { try gem.close() }
            if let gem = ownGEM.take() { try gem.close() }
            if let dmaBuf = dmaBuf.take() { try dmaBuf.close() }
        } catch { logger.warning("releasing a pipeline buffer: \(error)") }
    }
}

/// A run's running figures: capture sequence gaps by cause, frames shown, latency, rate.
struct RunTally {
    let started = ContinuousClock.now
    private(set) var firstShown: ContinuousClock.Instant?
    private(set) var latencies: [Double] = []
    private(set) var shown = 0
    private var ledger = CaptureLedger()

    /// A capture buffer went to the driver.
    mutating func queued(_ index: BufferIndex) { ledger.queued(index) }
    /// The capture queue started streaming.
    mutating func captureStarted() { ledger.started() }

    /// A captured frame: a sequence gap is frames dropped, the pipeline's or the source's (see
    /// `CaptureLedger`); no progress is a repeat.
    mutating func captured(_ frame: V4L2BufferInfo, wasDone: Bool, _ report: inout PipelineReport) {
        if let last = ledger.lastSequence, frame.sequence <= last { report.repeats += 1 }
        let (skipped, cause) = ledger.dequeued(
            BufferIndex(rawValue: frame.index), sequence: frame.sequence, wasDone: wasDone)
        switch cause {
        case .pipeline: report.drops += skipped
        case .late: report.lateDrops += skipped
        case .source: report.sourceDrops += skipped
        case nil: break
        }
    }

    /// A frame reached the sink `latency` after it was captured (or drawn).
    mutating func shown(after latency: Duration, of total: Int, drops: Int) -> Pipeline.Progress {
        firstShown = firstShown ?? .now
        latencies.append(latency.seconds * 1000)
        shown += 1
        return Pipeline.Progress(frame: shown, total: total, drops: drops, firstShown: firstShown)
    }

    /// Frames after the first over the time since it was shown.
    var framesPerSecond: Double {
        guard shown > 1, let firstShown else { return 0 }
        return Double(shown - 1) / max((ContinuousClock.now - firstShown).seconds, 1e-9)
    }
}

extension Duration {
    /// One 128-bit division (`components`), not two.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
