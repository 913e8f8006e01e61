import DmaBufKernel

/// One step of a pipeline graph: a source, a transform or a sink. The runner asks each stage
/// what it waits for, polls all of them at once, and lets each act on what became ready.
protocol Stage: AnyObject {
    /// For messages: the device or role.
    var name: String { get }
    /// The descriptors it waits on now, and for what (empty when it waits on nothing).
    var waits: [(fd: FileDescriptorNumber, events: PollEvents)] { get }
    /// Acts on the events of its `waits` (in order; empty on a turn nothing was polled for it)
    /// without blocking; true when it moved a frame on (made, handed on, gave back, or saw a new
    /// one come through), which is what keeps the run from counting as stalled.
    func advance(_ ready: [PollEvents]) throws -> Bool
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

    /// Runs until every stage is finished or `stop` says so (checked each turn).
    func run(stop: () -> Bool = { false }) throws {
        var ready: [ObjectIdentifier: [PollEvents]] = [:]
        var lastProgress = ContinuousClock.now
        while !stages.allSatisfy(\.isFinished), !stop() {
            var progressed = false
            for stage in stages where !stage.isFinished {
                progressed = try stage.advance(ready[ObjectIdentifier(stage)] ?? []) || progressed
            }
            let waiting = stages.filter { !$0.isFinished && !$0.waits.isEmpty }
            if progressed {
                lastProgress = .now
            } else if ContinuousClock.now - lastProgress > stallTimeout {
                let names = (waiting.isEmpty ? stages.filter { !$0.isFinished } : waiting).map(\.name)
                throw PipelineError(
                    "stalled: no frame moved on within \(stallTimeout) (waiting: \(names.joined(separator: ", ")))")
            }
            let requests = waiting.flatMap(\.waits)
            if requests.isEmpty { continue }
            let wait = progressed ? Duration.zero : stallTimeout - (ContinuousClock.now - lastProgress)
            let events = try kernel.poll(requests, timeoutMilliseconds: wait.pollMilliseconds)
            ready = [:]
            var offset = 0
            for stage in waiting {
                let count = stage.waits.count
                ready[ObjectIdentifier(stage)] = Array(events[offset..<offset + count])
                offset += count
            }
        }
    }
}
