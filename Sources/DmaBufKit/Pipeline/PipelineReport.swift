import DmaBufKernel
import Foundation

/// What a pipeline run did, measured: frames, drops, verification, rate, latency, and whether
/// it met its expectations (and if not, why).
public struct PipelineReport: Codable, Sendable {
    public var configuration: PipelineConfiguration
    /// With `allocator: auto`: what the advisor chose and why (the configuration holds the choice).
    public var allocatorChoice: String?
    /// The nodes actually used.
    public var sourcePath: String
    public var sinkPath: String
    public var format: String
    /// True when the CPU copied every frame (the copy strategy).
    public var copying: Bool
    public var bytesCopied: Int
    public var framesShown: Int
    /// Capture sequence numbers skipped while the driver had no buffer at all: the pipeline held
    /// them all (the pipeline's drops; `max-drops` applies to these).
    public var drops: Int
    /// Capture sequence numbers skipped while every buffer the driver held may have been filled,
    /// waiting for the pipeline to dequeue it: the pipeline was late (slow, or not scheduled on
    /// a busy machine; `max-late-drops` applies to these).
    public var lateDrops: Int
    /// Capture sequence numbers skipped while the driver had empty buffers queued: its own
    /// thread ran late (the source's drops; `max-source-drops` applies to these).
    public var sourceDrops: Int
    /// Flips that landed after the vblank following their commit, though the frame was ready
    /// (the display's side: its commit work ran late), and the vblanks they missed in all.
    public var lateFlips: Int
    public var vblanksMissed: Int
    /// Frames the display showed that were not newer than the one before.
    public var repeats: Int
    /// Frames the driver flagged as erroneous (V4L2_BUF_FLAG_ERROR); skipped, not shown.
    public var erroneousFrames: Int
    public var framesVerified: Int
    /// What a verified frame is compared with.
    public var verifiedAgainst = "what the display wrote back"
    public var framesMismatched: Int
    public var blankFrames: Int
    /// Verified frames whose picture is the same as the frame's before them: the check could not
    /// have told a stale frame from a fresh one.
    public var unchangedFrames: Int
    public var framesPerSecond: Double
    /// From the capture timestamp to the flip-complete event in our hands, in milliseconds.
    /// vivid stamps a frame's end (start + 0.9 frame periods) when it delivers it, so on
    /// vivid this is the real latency minus about a frame period, and may be negative.
    public var latencyMilliseconds: Spread?
    public var seconds: Double
    /// With a decoder: each compared frame's PSNR against the source frame it was made from, in dB.
    public var psnrDecibels: Spread?
    /// The signal that stopped the run before its last frame (`SIGINT`, `SIGTERM`); nil when it ran to the end.
    public var interruptedBy: String?
    /// False on a kernel that does not pace frames (the simulation): its rate is not a real one,
    /// and min-fps is not judged.
    public var paced: Bool
    /// Each stage's frames in and out, drops, the most it held and for how long, source first.
    public var stages: [StageFigures] = []
    /// What a reader should know that is not a failure.
    public var notes: [String]
    /// Why the run did not pass; empty when it did.
    public var failures: [String]
    public var passed: Bool { failures.isEmpty }

    init(configuration: PipelineConfiguration) {
        self.configuration = configuration
        (sourcePath, sinkPath, format, copying, bytesCopied) = ("", "", "", configuration.strategy == .copy, 0)
        (
            framesShown, drops, sourceDrops, repeats, erroneousFrames, framesVerified, framesMismatched, blankFrames,
            unchangedFrames, lateDrops
        ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        (lateFlips, vblanksMissed) = (0, 0)
        (framesPerSecond, latencyMilliseconds, seconds, failures, notes, paced) = (0, nil, 0, [], [], true)
    }

    /// The rate `min-fps` is judged by: frames shown per second, the frames the source itself
    /// skipped counted as kept up with (a late source is not a slow pipeline).
    public var keptUpFramesPerSecond: Double {
        framesShown > 1
            ? framesPerSecond * Double(framesShown - 1 + sourceDrops) / Double(framesShown - 1) : framesPerSecond
    }

    /// Compares the run with its expectations.
    mutating func judge() {
        typealias Expectations = PipelineConfiguration.Expectations
        let expect = configuration.expectations
        if let interruptedBy {
            failures.append("interrupted by \(interruptedBy) after \(framesShown) of \(configuration.frames) frames")
        } else if framesShown < configuration.frames {
            failures.append("showed \(framesShown) of \(configuration.frames) frames")
        }
        if let minimum = expect.minimumFramesPerSecond, !paced {
            notes.append(
                String(format: "min-fps %.1f not measured: this kernel does not pace frames (simulated)", minimum))
        } else if let minimum = expect.minimumFramesPerSecond, keptUpFramesPerSecond < minimum {
            failures.append(
                String(
                    format: "%.1f fps (%.1f counting the frames the source skipped), below the %.1f expected",
                    framesPerSecond, keptUpFramesPerSecond, minimum))
        }
        let maximumDrops = expect.maximumDrops ?? Expectations.defaultMaximumDrops(frames: configuration.frames)
        if drops > maximumDrops {
            failures.append(
                "\(drops) frames dropped by the pipeline (it held every buffer, the driver had none to fill), more than \(maximumDrops)"
                    + (expect.maximumDrops == nil ? " (the default: 5% of the frames)" : ""))
        }
        let maximumLateDrops =
            expect.maximumLateDrops ?? Expectations.defaultMaximumLateDrops(frames: configuration.frames)
        if lateDrops > maximumLateDrops {
            failures.append(
                "\(lateDrops) frames lost while the pipeline was late (every queued buffer filled, waiting to be dequeued), more than \(maximumLateDrops)"
                    + (expect.maximumLateDrops == nil ? " (the default: half the frames)" : ""))
        }
        let maximumSourceDrops =
            expect.maximumSourceDrops ?? Expectations.defaultMaximumSourceDrops(frames: configuration.frames)
        if sourceDrops > maximumSourceDrops {
            failures.append(
                "\(sourceDrops) frames skipped by the source while buffers were queued (it ran late), more than \(maximumSourceDrops)"
                    + (expect.maximumSourceDrops == nil ? " (the default: half the frames)" : ""))
        }
        if let psnr = psnrDecibels {
            let minimum = expect.minimumPSNR ?? Expectations.defaultMinimumPSNR
            if psnr.minimum < minimum {
                failures.append(
                    String(
                        format: "a decoded frame's PSNR was %.1f dB, below the %.1f dB expected", psnr.minimum, minimum)
                )
            }
        } else if configuration.decoder != nil && configuration.verifyEvery > 0 && framesShown > 0
            && interruptedBy == nil
        {
            failures.append("no decoded frame could be compared with its source (PSNR)")
        }
        if expect.verified {
            if configuration.verifyEvery == 0 {
                failures.append("verification was expected but is off (verify-every 0)")
            }
            if framesVerified == 0 && configuration.verifyEvery > 0 {
                failures.append(
                    "no frame could be verified (this sink shows nothing that can be read back); expect verified: false"
                )
            }
            if framesMismatched > 0 {
                failures.append(
                    "\(framesMismatched) of \(framesVerified) verified frames differ from \(verifiedAgainst)")
            }
            if blankFrames > 0 {
                failures.append(
                    "\(blankFrames) of \(framesVerified) verified frames are blank (one flat colour): the source shows no picture"
                )
            }
            if unchangedFrames > 0 {
                failures.append(
                    "\(unchangedFrames) of \(framesVerified) verified frames are the same picture as the frame before them: a stale frame could not be told apart"
                )
            }
        }
    }

    /// One line for a terminal.
    public var summary: String {
        var text = "\(passed ? "PASS" : "FAIL") \(configuration.strategy.rawValue)"
        if configuration.strategy == .import {
            text += " (\(allocatorChoice == nil ? "" : "auto: ")\(configuration.allocator.rawValue))"
        }
        text +=
            " \(sourcePath) → \(sinkPath) \(format): \(framesShown) frames, \(String(format: "%.1f", framesPerSecond)) fps, "
        text +=
            "\(drops) dropped, \(lateDrops) lost late, \(sourceDrops) skipped by the source, \(lateFlips) late flips, \(repeats) repeated, \(framesVerified) verified (\(framesMismatched) differ, \(blankFrames) blank, \(unchangedFrames) unchanged)"
        if let latency = latencyMilliseconds {
            text += String(format: ", latency %.1f/%.1f/%.1f ms", latency.minimum, latency.median, latency.maximum)
        }
        if let psnr = psnrDecibels {
            text += String(format: ", PSNR %.1f/%.1f/%.1f dB", psnr.minimum, psnr.median, psnr.maximum)
        }
        if copying { text += ", copying \(bytesCopied / 1024) KiB" }
        if !paced { text += " (unpaced: simulated kernel)" }
        for failure in failures { text += "\n  - \(failure)" }
        for note in notes { text += "\n  note: \(note)" }
        for stage in stages { text += "\n  stage \(stage.summary)" }
        return text
    }
}
