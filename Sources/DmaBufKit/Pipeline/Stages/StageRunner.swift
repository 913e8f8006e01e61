import DmaBufKernel

/// One step of a pipeline graph: a source, a transform or a sink. The runner asks each stage
/// what it waits for, polls all of them at once, and lets each act on what became ready.
protocol Stage: AnyObject {
    /// For messages: the device or role.
    var name: String { get }
    /// The descriptor it waits on now, and for what (nil when it waits on nothing).
    var wait: (fd: FileDescriptorNumber, events: PollEvents)? { get }
    /// Acts on what the last poll found for its `wait` (nil on a turn nothing was polled for it)
    /// without blocking; true when it moved a frame on (made, handed on, gave back, or saw a new
    /// one come through), which is what keeps the run from counting as stalled.
    func advance(_ ready: PollEvents?) throws -> Bool
    /// It has done all it will.
    var isFinished: Bool { get }
    /// For a stall's message: what it holds or was refused that may explain the stall, when it
    /// can tell.
    var stallHint: String? { get }
}

extension Stage {
    var stallHint: String? { nil }
}

/// The one loop that drives any graph of stages: each turn every stage acts on what is ready,
/// then the runner polls every descriptor any stage waits on. When no stage has moved a frame
/// on for `stallTimeout` (events that move nothing, such as a check reading a capture, do not
/// count), the run is stalled, reported with what each stage waited on.
struct StageRunner {
    let kernel: any Kernel
    let stages: [any Stage]
    var stallTimeout: Duration = .seconds(2)

    /// Runs until every stage is finished or `stop` says so (checked each turn). A turn that
    /// moved a frame is followed by a poll that does not wait, so that a stage learns what is
    /// already there before anything blocks.
    func run(stop: () -> Bool = { false }) throws {
        // Per stage, the events of the last poll; the poll's requests and whose they are. Kept
        // across turns: a frame's turns allocate nothing here.
        // The first `count` entries of `requests` and `polled` are this turn's.
        var ready = [PollEvents?](repeating: nil, count: stages.count)
        var requests = [(fd: FileDescriptorNumber, events: PollEvents)](
            repeating: (FileDescriptorNumber(rawValue: -1), []), count: stages.count)
        var polled = [Int](repeating: 0, count: stages.count)
        // The stall clock (CLOCK_MONOTONIC, ns) restarts at the first turn that moves nothing
        // after one that did: one clock read a frame, not one a turn.
        let stallNanoseconds = Int64(stallTimeout.seconds * 1e9)
        var lastProgress = Pipeline.monotonicNanoseconds()
        var restartStallClock = false
        while stages.contains(where: { !$0.isFinished }), !stop() {
            var progressed = false
            for (index, stage) in stages.enumerated() where !stage.isFinished {
                progressed = try stage.advance(ready[index]) || progressed
                ready[index] = nil
            }
            var count = 0
            for (index, stage) in stages.enumerated() where !stage.isFinished {
                guard let wait = stage.wait else { continue }
                (requests[count], polled[count]) = (wait, index)
                count += 1
            }
            var idle: Int64 = 0  // since the stall clock started
            if progressed {
                restartStallClock = true
            } else if restartStallClock {
                lastProgress = Pipeline.monotonicNanoseconds()
                restartStallClock = false
            } else {
                idle = Pipeline.monotonicNanoseconds() - lastProgress
            }
            if idle > stallNanoseconds {
                let waiting = count == 0 ? stages.filter { !$0.isFinished } : polled[..<count].map { stages[$0] }
                let described = waiting.map { stage in stage.stallHint.map { "\(stage.name): \($0)" } ?? stage.name }
                throw PipelineError(
                    "stalled: no frame moved on within \(stallTimeout) (waiting: \(described.joined(separator: "; ")))")
            }
            if count == 0 { continue }
            // Rounded up: a poll that returns just before the stall would end would spin.
            let wait = progressed ? 0 : Int32(clamping: (stallNanoseconds - idle + 999_999) / 1_000_000)
            if count == 1 {  // the common case, without the arrays of the general poll
                ready[polled[0]] = try kernel.poll(
                    requests[0].fd, events: requests[0].events, timeoutMilliseconds: wait)
            } else {
                let events = try kernel.poll(Array(requests[..<count]), timeoutMilliseconds: wait)
                for request in 0..<count { ready[polled[request]] = events[request] }
            }
        }
    }
}
