import DmaBufKernel
import DmaBufSimulation
import Glibc
import Testing

@testable import DmaBufKit

/// A consumer that keeps each frame for a number of the runner's turns, and records any frame
/// that arrives in a buffer it or a peer still holds: what a buffer requeued too early (before
/// every consumer released it) would look like once the driver filled it again.
final class HoldingConsumer: Stage, FrameConsumer {
    let name: String
    let turns: Int
    let source: CaptureSourceStage
    var peers: [HoldingConsumer] = []
    private(set) var held: [(frame: Frame, turnsLeft: Int)] = []
    private(set) var violations: [String] = []
    private(set) var taken = 0

    init(_ name: String, turns: Int, source: CaptureSourceStage) {
        (self.name, self.turns, self.source) = (name, turns, source)
    }

    var canAccept: Bool { true }

    func accept(_ frame: Frame) throws {
        for holder in peers + [self] {
            if let old = holder.held.first(where: { $0.frame.index == frame.index && $0.frame !== frame }) {
                violations.append(
                    "\(frame.index) came back as frame \(frame.number) while \(holder.name) held frame \(old.frame.number) in it"
                )
            }
        }
        held.append((frame, turns))
        taken += 1
    }

    var wait: (fd: FileDescriptorNumber, events: PollEvents)? { nil }
    var isFinished: Bool { source.isFinished && held.isEmpty }

    func advance(_ ready: PollEvents?) throws -> Bool {
        held = held.map { ($0.frame, $0.turnsLeft - 1) }
        let done = held.filter { $0.turnsLeft <= 0 }
        held.removeAll { $0.turnsLeft <= 0 }
        for (frame, _) in done { try frame.release() }
        return !done.isEmpty
    }
}

enum StageCases {
    /// A tee's rule, on a real capture queue: two consumers hold each frame for different
    /// times, and no buffer is ever filled again while either still holds it.
    static func aBufferReturnsOnlyWhenEveryConsumerIsDone(_ kernel: any Kernel) throws {
        try expectNoLeaks(kernel) {
            let camera = try V4L2Device(name: "vivid-000-vid-cap", kernel: kernel)
            _ = try camera.setFormat(V4L2Format(type: .videoCapture, width: 640, height: 480, pixelFormat: .xbgr32))
            try camera.setFrameInterval(.videoCapture, V4L2Fraction(1, 30))
            let queue = OwnedQueue(try V4L2Queue(device: camera, type: .videoCapture, memory: .mmap, count: 4))
            let slots = queue.indices.map { _ in PipelineSlot() }
            let source = CaptureSourceStage(
                name: camera.path, queue: queue, slots: slots, frames: 24,
                report: PipelineReport(configuration: PipelineConfiguration()))
            let quick = HoldingConsumer("the quick consumer", turns: 1, source: source)
            let slow = HoldingConsumer("the slow consumer", turns: 4, source: source)
            (quick.peers, slow.peers) = ([slow], [quick])
            source.consumers = [quick, slow]
            try source.start()
            try StageRunner(kernel: kernel, stages: [source, quick, slow]).run()
            try source.stop()
            #expect(quick.violations.isEmpty && slow.violations.isEmpty, "\(quick.violations + slow.violations)")
            #expect(quick.taken == 24 && slow.taken == 24)
            try queue.release()
            try camera.close()
        }
    }
}

@Suite("Pipeline stages on the simulated kernel")
struct SimulatedStageTests {
    @Test func aBufferReturnsOnlyWhenEveryConsumerIsDone() throws {
        try StageCases.aBufferReturnsOnlyWhenEveryConsumerIsDone(SimulatedKernel())
    }

    /// The ownership rule itself: the producer gets a buffer back after the last consumer's
    /// release, not the first's, and a release too many is a programming error caught at once.
    @Test func aFrameReturnsAfterItsLastHolder() throws {
        final class Producer: FrameProducer {
            var returned = 0
            func frameReturned(_ frame: Frame) { returned += 1 }
        }
        let producer = Producer()
        let frame = Frame(
            index: BufferIndex(rawValue: 0), slot: PipelineSlot(), number: 0, timestamp: .zero, producer: producer)
        frame.hold()
        frame.hold()
        try frame.release()
        #expect(producer.returned == 0)
        try frame.release()
        #expect(producer.returned == 1 && frame.holders == 0)
    }

    /// Every stage of a codec round trip reports the frames it took and passed on; none held
    /// more than its design allows (the display: the frame on screen and the one flipped to).
    @Test(arguments: SimulatedKernel.Version.allCases)
    func everyStageReportsWhatPassedThrough(_ version: SimulatedKernel.Version) throws {
        var settings = PipelineConfiguration(frames: 8, framesPerSecond: 5, buffers: 6, verifyEvery: 2)
        (settings.encoder, settings.decoder) = ("stateful-encoder", "stateful-decoder")
        let report = try Pipeline(settings, kernel: SimulatedKernel(version: version)).run()
        #expect(report.passed, "\(report.summary)")
        #expect(
            report.stages.map { $0.stage.split(separator: " ")[0] } == ["capture", "encoder", "decoder", "display"])
        for stage in report.stages {
            #expect(stage.framesIn == 8 && stage.framesOut == 8 && stage.dropped == 0, "\(stage.summary)")
            #expect(stage.heldMilliseconds != nil, "\(stage.summary)")
        }
        #expect(report.stages.last!.maximumHeld <= 2, "\(report.stages.last!.summary)")
        #expect(report.psnrDecibels.map { $0.minimum > 40 } == true, "the stand-in keeps 6 bits: \(report.summary)")
    }
}

extension DeviceTests {
    @Suite(
        "Pipeline stages on the real kernel",
        .enabled(if: V4L2Devices.available || Devices.required, V4L2Devices.skipReason))
    struct StagesOnDevices {
        @Test func aBufferReturnsOnlyWhenEveryConsumerIsDone() throws {
            try StageCases.aBufferReturnsOnlyWhenEveryConsumerIsDone(LinuxKernel())
        }
    }
}

/// A stage that moves `frames` frames on, one a turn, then waits for ever on `fd` (and says so
/// in a stall's message).
final class StallingStage: Stage {
    let name = "stalling"
    private var left: Int
    let fd: FileDescriptorNumber

    init(frames: Int, fd: FileDescriptorNumber) { (left, self.fd) = (frames, fd) }

    var wait: (fd: FileDescriptorNumber, events: PollEvents)? { left == 0 ? (fd, .readable) : nil }
    func advance(_ ready: PollEvents?) throws -> Bool {
        guard left > 0 else { return false }
        left -= 1
        return true
    }
    var isFinished: Bool { false }
    var stallHint: String? { left == 0 ? "moved all it had" : nil }
}

@Suite struct StallTests {
    /// A run that stops moving frames, at once or after a few, ends as stalled once the timeout
    /// passed with nothing moved (never sooner: the poll in between blocks on a pipe never written).
    @Test(arguments: [0, 3])
    func aRunThatStopsMovingStalls(framesFirst: Int) throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { ends.forEach { _ = close($0) } }
        let stage = StallingStage(frames: framesFirst, fd: FileDescriptorNumber(rawValue: ends[0]))
        let started = ContinuousClock.now
        #expect {
            try StageRunner(kernel: LinuxKernel(), stages: [stage], stallTimeout: .milliseconds(200)).run()
        } throws: { error in
            let problem = (error as? PipelineError)?.problem ?? ""
            return problem.hasPrefix("stalled: no frame moved on within")
                && problem.hasSuffix("(waiting: stalling: moved all it had)")
        }
        #expect(ContinuousClock.now - started >= .milliseconds(200))
    }
}
