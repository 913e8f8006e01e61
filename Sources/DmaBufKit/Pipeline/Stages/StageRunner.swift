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
        var ready = [PollEvents?](repeating: nil, count: stages.count)
        var requests: [(fd: FileDescriptorNumber, events: PollEvents)] = []
        var polled: [Int] = []
        requests.reserveCapacity(stages.count)
        polled.reserveCapacity(stages.count)
        var lastProgress = ContinuousClock.now
        while stages.contains(where: { !$0.isFinished }), !stop() {
            var progressed = false
            for (index, stage) in stages.enumerated() where !stage.isFinished {
                progressed = try stage.advance(ready[index]) || progressed
                ready[index] = nil
            }
            requests.removeAll(keepingCapacity: true)
            polled.removeAll(keepingCapacity: true)
            for (index, stage) in stages.enumerated() where !stage.isFinished {
                guard let wait = stage.wait else { continue }
                requests.append(wait)
                polled.append(index)
            }
            if progressed {
                lastProgress = .now
            } else if ContinuousClock.now - lastProgress > stallTimeout {
                let waiting = polled.isEmpty ? stages.filter { !$0.isFinished } : polled.map { stages[$0] }
                throw PipelineError(
                    "stalled: no frame moved on within \(stallTimeout) (waiting: \(waiting.map(\.name).joined(separator: ", ")))"
                )
            }
            if requests.isEmpty { continue }
            let wait = progressed ? Duration.zero : stallTimeout - (ContinuousClock.now - lastProgress)
            if requests.count == 1 {  // the common case, without the arrays of the general poll
                ready[polled[0]] = try kernel.poll(
                    requests[0].fd, events: requests[0].events, timeoutMilliseconds: wait.pollMilliseconds)
            } else {
                let events = try kernel.poll(requests, timeoutMilliseconds: wait.pollMilliseconds)
                for (request, index) in polled.enumerated() { ready[index] = events[request] }
            }
        }
    }
}
