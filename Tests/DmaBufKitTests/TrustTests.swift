import DmaBufSimulation
import Foundation
import Testing

@testable import DmaBufKit

#if canImport(Glibc)
    import Glibc
#endif

/// Results a busy machine cannot fake: drops are booked to whoever caused them, and a verified
/// frame is proven to be the one meant to be on screen.
@Suite("Capture drops by cause")
struct CaptureLedgerTests {
    /// Queues buffers 0..<count, as a pipeline does before STREAMON, then starts.
    static func primed(_ count: UInt32) -> CaptureLedger {
        var ledger = CaptureLedger()
        for index in 0..<count { ledger.queued(BufferIndex(rawValue: index)) }
        ledger.started()
        return ledger
    }

    /// The pipeline waits for every frame (nothing was done when it asked), requeueing each at
    /// once: a gap can only be the source's, however long it is.
    @Test func aLateSourceWithBuffersWaiting() {
        var ledger = Self.primed(4)
        #expect(ledger.dequeued(BufferIndex(rawValue: 0), sequence: 0, wasDone: false) == (0, nil))
        ledger.queued(BufferIndex(rawValue: 0))
        #expect(ledger.dequeued(BufferIndex(rawValue: 1), sequence: 1, wasDone: false) == (0, nil))
        ledger.queued(BufferIndex(rawValue: 1))
        #expect(ledger.dequeued(BufferIndex(rawValue: 2), sequence: 5, wasDone: false) == (3, .source))
        #expect(ledger.held == 3)
    }

    /// The pipeline was away: every buffer it had queued came back already done, and it took
    /// them all before it queued one again. The driver had no buffer: the pipeline's drop.
    @Test func aStarvedQueue() {
        var ledger = Self.primed(3)
        #expect(ledger.dequeued(BufferIndex(rawValue: 0), sequence: 0, wasDone: false) == (0, nil))
        // Away: buffers 1 and 2 fill, frames 3 and 4 are lost.
        #expect(ledger.dequeued(BufferIndex(rawValue: 1), sequence: 1, wasDone: true) == (0, nil))
        #expect(ledger.dequeued(BufferIndex(rawValue: 2), sequence: 2, wasDone: true) == (0, nil))
        ledger.queued(BufferIndex(rawValue: 0))
        #expect(ledger.dequeued(BufferIndex(rawValue: 0), sequence: 5, wasDone: false) == (2, .pipeline))
    }

    /// Behind by one frame (found done) with three more queued: the driver still had empty
    /// buffers, so the gap is the source's; with nothing else queued it would be the pipeline's.
    /// Behind by as many frames as it had queued, never holding them all: every buffer may have
    /// been filled, and the gap is the late pipeline's (what a busy machine does to it).
    @Test func behindButNotStarved() {
        var ledger = Self.primed(4)
        #expect(ledger.dequeued(BufferIndex(rawValue: 0), sequence: 0, wasDone: true) == (0, nil))
        ledger.queued(BufferIndex(rawValue: 0))
        #expect(ledger.dequeued(BufferIndex(rawValue: 1), sequence: 3, wasDone: true) == (2, .source))

        var starved = Self.primed(1)
        #expect(starved.dequeued(BufferIndex(rawValue: 0), sequence: 0, wasDone: true) == (0, nil))
        starved.queued(BufferIndex(rawValue: 0))
        #expect(starved.dequeued(BufferIndex(rawValue: 0), sequence: 2, wasDone: false) == (1, .pipeline))

        var behind = Self.primed(3)
        for index: UInt32 in 0..<3 {
            #expect(behind.dequeued(BufferIndex(rawValue: index), sequence: index, wasDone: index > 0) == (0, nil))
            behind.queued(BufferIndex(rawValue: index))
        }
        #expect(behind.dequeued(BufferIndex(rawValue: 0), sequence: 4, wasDone: true) == (1, .late))
    }

    /// Bounds that apply when a run states none: 5% of the frames for the pipeline, half of
    /// them for a late pipeline and for the source; each failure says it was the default.
    @Test func defaultBounds() {
        var report = PipelineReport(configuration: PipelineConfiguration(frames: 100))
        report.framesShown = 100
        (report.drops, report.lateDrops, report.sourceDrops, report.framesVerified) = (5, 50, 50, 100)
        report.judge()
        #expect(report.passed, "\(report.failures)")
        var lossy = PipelineReport(configuration: PipelineConfiguration(frames: 100))
        lossy.framesShown = 100
        (lossy.drops, lossy.lateDrops, lossy.sourceDrops, lossy.framesVerified) = (6, 51, 51, 100)
        lossy.judge()
        #expect(
            lossy.failures.count == 3 && lossy.failures.allSatisfy { $0.contains("the default") }, "\(lossy.failures)")
        // min-fps: a late source's skips count as kept up with (99 frames in 11 s, 11 skipped: 10 fps).
        var late = PipelineReport(
            configuration: PipelineConfiguration(frames: 100, expectations: .init(minimumFramesPerSecond: 9.5)))
        (late.framesShown, late.framesPerSecond, late.sourceDrops, late.framesVerified) = (100, 9, 11, 100)
        late.judge()
        #expect(late.passed && late.keptUpFramesPerSecond == 10, "\(late.failures)")
        late.sourceDrops = 0
        late.failures = []
        late.judge()
        #expect(late.failures.count == 1 && late.failures[0].contains("below the 9.5 expected"), "\(late.failures)")
        var stated = PipelineReport(
            configuration: PipelineConfiguration(
                frames: 100, expectations: .init(maximumDrops: 10, maximumLateDrops: 70, maximumSourceDrops: 60)))
        stated.framesShown = 100
        (stated.drops, stated.lateDrops, stated.sourceDrops, stated.framesVerified) = (6, 61, 51, 100)
        stated.judge()
        #expect(stated.passed, "\(stated.failures)")
    }
}

/// The same cases on both kernels; how a late source and a stalled pipeline are made differs.
enum TrustCases {
    /// Interference a test applies from inside a run (its progress callback).
    struct Interference {
        /// The capture thread runs late while empty buffers wait.
        var sourceRunsLate: () -> Void
        /// The pipeline holds on to the frame it has for longer than all its buffers last.
        var pipelineStalls: () -> Void
    }

    static func simulated(_ kernel: SimulatedKernel) -> Interference {
        Interference(
            sourceRunsLate: { kernel.delayCaptureThread(skipping: 3, node: "vivid-000-vid-cap") },
            // 7 buffers queued (one is on screen), one of them filled by the runner's poll of the
            // turn the frame was shown in: 6 fill, 4 frames are lost.
            pipelineStalls: { kernel.elapseCapturePeriods(10, node: "vivid-000-vid-cap") })
    }

    /// vivid's capture thread is an ordinary kthread: real-time busy threads on every CPU keep
    /// it from running for 600 ms (6 periods at 10 fps), after which it skips the periods it
    /// slept through with every buffer still queued. A stall: 12 periods asleep.
    static var real: Interference {
        Interference(
            sourceRunsLate: { RealtimeHog.occupyEveryCPU(milliseconds: 600) },
            pipelineStalls: { usleep(1_200_000) })
    }

    static func configuration(frames: Int, buffers: Int? = nil) -> PipelineConfiguration {
        var settings = PipelineCases.configuration(.export, frames: frames, verifyEvery: 0)
        settings.buffers = buffers ?? settings.buffers
        settings.expectations = .init(maximumDrops: 0, maximumLateDrops: 0, verified: false)
        return settings
    }

    /// A source that skips frames while buffers wait does not count against max-drops.
    static func lateSourceIsNotThePipelinesDrop(
        _ kernel: any Kernel, _ interference: Interference, exactly: Int?
    ) throws {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(configuration(frames: 12), kernel: kernel).run { progress in
                if progress.frame == 4 { interference.sourceRunsLate() }
            }
            #expect(
                report.passed && report.drops == 0 && report.lateDrops == 0 && report.sourceDrops >= 1,
                "\(report.summary)")
            if let exactly { #expect(report.sourceDrops == exactly, "\(report.summary)") }
        }
    }

    /// A pipeline that stalls while its buffers are queued loses the frames after them: late
    /// drops, not the pipeline's (it never held every buffer; a busy machine can do this to
    /// any pipeline), bounded by max-late-drops.
    static func stalledPipelineIsLate(_ kernel: any Kernel, _ interference: Interference, exactly: Int?) throws {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(configuration(frames: 16, buffers: 8), kernel: kernel).run { progress in
                if progress.frame == 4 { interference.pipelineStalls() }
            }
            #expect(!report.passed && report.lateDrops >= 1 && report.drops == 0, "\(report.summary)")
            #expect(report.failures.contains { $0.contains("while the pipeline was late") }, "\(report.failures)")
            if let exactly { #expect(report.lateDrops == exactly && report.sourceDrops == 0, "\(report.summary)") }
        }
    }

    /// With two buffers the pipeline holds both (one on screen, one being flipped to): a stall
    /// leaves the driver with none, and the frames lost count against the pipeline.
    static func starvedQueueIsThePipelinesDrop(_ kernel: any Kernel, _ interference: Interference, exactly: Int?) throws
    {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(configuration(frames: 10, buffers: 2), kernel: kernel).run { progress in
                if progress.frame == 4 { interference.pipelineStalls() }
            }
            #expect(!report.passed && report.drops >= 1, "\(report.summary)")
            #expect(report.failures.contains { $0.contains("dropped by the pipeline") }, "\(report.failures)")
            if let exactly { #expect(report.drops == exactly && report.sourceDrops == 0, "\(report.summary)") }
        }
    }

    /// A display that keeps the old framebuffer (the flip of frame 3 lost) fails verification:
    /// every frame carries its counter, so the old picture is not the new one.
    static func stuckDisplayFails(_ kernel: any Kernel, source: String) throws {
        try expectNoLeaks(kernel) {
            var settings = PipelineCases.configuration(
                source == PipelineConfiguration.patternSource ? .import : .export, frames: 6, verifyEvery: 1)
            (settings.source, settings.injectStuckDisplay) = (source, 3)
            let report = try Pipeline(settings, kernel: kernel).run()
            #expect(!report.passed && report.framesMismatched == 1 && report.unchangedFrames == 0, "\(report.summary)")
            #expect(
                report.failures.contains { $0.contains("differ from what the display wrote back") },
                "\(report.failures)")
        }
    }

    /// A source whose picture stops changing (vivid's counter line turned off mid-run, from
    /// another open) cannot prove its frames fresh: the run fails and says so. However late the
    /// pipeline runs, at most the 7 buffers the driver holds can carry frames captured before
    /// the change (made after 2 frames were shown): from the 10th frame on, every one is newer.
    static func unchangingSourceFails(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let report = try Pipeline(PipelineCases.configuration(.export, frames: 14, verifyEvery: 1), kernel: kernel)
                .run { progress in
                    guard progress.frame == 2 else { return }
                    do {
                        let other = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
                        try other.setControl(VividControl.osdTextMode, VividControl.osdNone)
                        try other.close()
                    } catch { Issue.record("turning vivid's OSD off: \(error)") }
                }
            #expect(!report.passed && report.unchangedFrames >= 1 && report.framesMismatched == 0, "\(report.summary)")
            #expect(report.failures.contains { $0.contains("same picture as the frame before") }, "\(report.failures)")
        }
    }
}

@Suite("Trustworthy pipeline results on the simulated kernel")
struct SimulatedTrustTests {
    @Test func lateSource() throws {
        let kernel = SimulatedKernel()
        try TrustCases.lateSourceIsNotThePipelinesDrop(kernel, TrustCases.simulated(kernel), exactly: 3)
    }
    @Test func stalledPipeline() throws {
        let kernel = SimulatedKernel()
        try TrustCases.stalledPipelineIsLate(kernel, TrustCases.simulated(kernel), exactly: 4)
    }
    @Test func starvedQueue() throws {
        let kernel = SimulatedKernel()
        try TrustCases.starvedQueueIsThePipelinesDrop(kernel, TrustCases.simulated(kernel), exactly: 10)
    }
    @Test(arguments: ["vivid", PipelineConfiguration.patternSource])
    func stuckDisplay(_ source: String) throws { try TrustCases.stuckDisplayFails(SimulatedKernel(), source: source) }
    @Test func unchangingSource() throws { try TrustCases.unchangingSourceFails(SimulatedKernel()) }

    /// A flip that lands vblanks after the one it was due on is the display's lateness: reported,
    /// not a pipeline drop.
    @Test func lateFlipsAreTheDisplays() throws {
        let kernel = SimulatedKernel()
        try expectNoLeaks(kernel) {
            let report = try Pipeline(PipelineCases.configuration(.export, frames: 6, verifyEvery: 1), kernel: kernel)
                .run { progress in
                    if progress.frame == 3 { kernel.delayNextFlip(vblanks: 2) }
                }
            #expect(
                report.passed && report.lateFlips == 1 && report.vblanksMissed == 2 && report.drops == 0,
                "\(report.summary)")
        }
    }

    /// With no expectations stated, a large loss fails the run.
    @Test func largeLossFailsByDefault() throws {
        let kernel = SimulatedKernel()
        var settings = PipelineCases.configuration(.export, frames: 20, verifyEvery: 0)
        settings.expectations = .init(verified: false)
        try expectNoLeaks(kernel) {
            let report = try Pipeline(settings, kernel: kernel).run { progress in
                if progress.frame == 4 { kernel.elapseCapturePeriods(30, node: "vivid-000-vid-cap") }
            }
            #expect(!report.passed && report.lateDrops == 24, "\(report.summary)")
            #expect(report.failures.contains { $0.contains("the default: half the frames") }, "\(report.failures)")
        }
    }
}

extension DeviceTests {
    @Suite(
        "Trustworthy pipeline results on the real kernel",
        .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
    struct TrustOnDevices {
        @Test func lateSource() throws {
            try TrustCases.lateSourceIsNotThePipelinesDrop(LinuxKernel(), TrustCases.real, exactly: nil)
        }
        @Test func stalledPipeline() throws {
            try TrustCases.stalledPipelineIsLate(LinuxKernel(), TrustCases.real, exactly: nil)
        }
        @Test func starvedQueue() throws {
            try TrustCases.starvedQueueIsThePipelinesDrop(LinuxKernel(), TrustCases.real, exactly: nil)
        }
        @Test(arguments: ["vivid", PipelineConfiguration.patternSource])
        func stuckDisplay(_ source: String) throws { try TrustCases.stuckDisplayFails(LinuxKernel(), source: source) }
        @Test func unchangingSource() throws { try TrustCases.unchangingSourceFails(LinuxKernel()) }
    }
}

/// Busy SCHED_FIFO threads, one per CPU, for a while: nothing of ordinary priority runs
/// meanwhile (needs root, as the VM's tests run).
enum RealtimeHog {
    static func occupyEveryCPU(milliseconds: Int) {
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let done = DispatchSemaphore(value: 0)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(milliseconds) * 1_000_000
        for _ in 0..<cpus {
            Thread.detachNewThread {
                var parameter = sched_param(sched_priority: 1)
                let status = pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameter)
                if status != 0 {
                    Issue.record("pthread_setschedparam(SCHED_FIFO): \(String(cString: strerror(status)))")
                }
                while DispatchTime.now().uptimeNanoseconds < deadline {}
                done.signal()
            }
        }
        for _ in 0..<cpus { done.wait() }
    }
}
