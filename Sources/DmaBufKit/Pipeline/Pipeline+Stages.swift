import DmaBufKernel
import Foundation
import Logging

/// A sink that says when each frame reached it: what a run reports as progress.
protocol FrameArrivals: AnyObject {
    /// From each frame's timestamp to its arrival, since the last call, one by one (the list is
    /// kept for the next frames: no array a frame).
    func takeLatencies(_ each: (Duration) -> Void)
}

extension Pipeline {
    /// Runs the graph `stages` with `StageRunner` until every stage is finished or a stop is
    /// asked for (the report is then marked interrupted); each frame reaching `sink` is a step of
    /// progress.
    func drive(
        _ stages: [any Stage], sink: any FrameArrivals, drops: () -> Int, stallTimeout: Duration = .seconds(2),
        tally: inout RunTally, report: inout PipelineReport, progress: (Progress) -> Void
    ) throws {
        var interruption: String?
        try StageRunner(kernel: kernel, stages: stages, stallTimeout: stallTimeout).run {
            reportArrivals(at: sink, drops: drops(), tally: &tally, progress: progress)
            guard let signal = stopRequest() else { return false }
            interruption = StopSignals.name(signal)
            logger.notice("\(StopSignals.name(signal)): stopping the run at this frame")
            return true
        }
        reportArrivals(at: sink, drops: drops(), tally: &tally, progress: progress)
        if let interruption { report.interruptedBy = interruption }
    }

    /// The stages' figures, in the order given (source first), into the report.
    func meter(_ stages: [(any Metered)?], into report: inout PipelineReport) {
        report.stages = stages.compactMap { $0?.meter.figures }
    }

    /// Each frame that reached `sink` since the last call, as a step of progress (also after
    /// the run, for frames a sink gives back only when it stops).
    func reportArrivals(
        at sink: any FrameArrivals, drops: Int, tally: inout RunTally, progress: (Progress) -> Void
    ) {
        sink.takeLatencies { latency in
            progress(tally.shown(after: latency, of: configuration.frames, drops: drops))
        }
    }

    /// The display as a stage: a buffer not yet imported is imported at first sight (at its
    /// slot's pitch), each frame shown and, when due, verified through `writeback`.
    func displayStage(
        _ display: OwnedDRMDevice, pipe: DisplayPipe, writeback: PipelineSlot, report: PipelineReport
    ) -> DisplayStage {
        DisplayStage(
            display: display, report: report,
            attach: { [self] slot in try display.with { try attach(slot, to: $0, pitch: slot.pitch) } },
            present: { [self] frame, previous, number, report, afterFlip in
                try display.with {
                    try present(
                        frame.slot, previous: previous?.slot, number: number, pitch: frame.slot.pitch, display: $0,
                        pipe: pipe, writeback: writeback, report: &report, afterFlip: afterFlip)
                }
            })
    }
}

extension PipelineReport {
    /// The display side's figures (flips, verification) into a run's report.
    mutating func copyDisplayFigures(from screen: DisplayStage) {
        let shown = screen.report
        (lateFlips, vblanksMissed, framesVerified, framesMismatched) = (
            shown.lateFlips, shown.vblanksMissed, shown.framesVerified, shown.framesMismatched
        )
        (blankFrames, unchangedFrames) = (shown.blankFrames, shown.unchangedFrames)
    }
}
