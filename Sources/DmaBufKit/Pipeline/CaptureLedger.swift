import DmaBufKernel

/// Whose fault a skipped capture sequence number is, from what the pipeline knew of the queue.
///
/// A capture driver loses a frame when it has no empty buffer at the moment the frame is due
/// (the pipeline starved it), or when its own thread runs late and skips frames while empty
/// buffers wait (vivid under load: it counts the periods it slept through). The pipeline sees
/// only its own QBUFs and DQBUFs, and for each DQBUF whether the frame was already done when it
/// asked (a non-blocking DQBUF first). From that it bounds, at every moment between two
/// frames, how many empty buffers the driver held:
/// - after the earlier frame was dequeued: every buffer the driver holds is empty until the
///   later frame fills one, so the bound is the count held;
/// - before it (from when that frame's buffer was queued): the count held, less the frames that
///   may already have been waiting — the DQBUFs from then on that found their frame done, up to
///   the first that had to wait (frames fill in order: nothing after it was done yet).
/// A gap counts against the pipeline when that bound reaches 0 anywhere in between; otherwise
/// the driver always had a buffer and the source was late. Load cannot fake the pipeline's
/// innocence: a slow pipeline shows as frames found done, which lower the bound.
struct CaptureLedger {
    enum Cause: Equatable { case pipeline, source }

    private enum Event { case queued, dequeued(wasDone: Bool) }
    /// Events since the oldest point a later gap can need, with the count held after each.
    private var events: [(event: Event, heldAfter: Int)] = []
    /// The absolute number of `events[0]`.
    private var base = 0
    /// Buffers queued to the driver and not dequeued.
    private(set) var held = 0
    /// Per buffer index: the absolute number of its latest QBUF event.
    private var queuedAt: [UInt32: Int] = [:]
    private var last: (sequence: UInt32, dequeuedAt: Int, queuedAt: Int)?
    /// The sequence number of the frame dequeued last.
    var lastSequence: UInt32? { last?.sequence }
    /// The point at STREAMON: before it the driver fills nothing.
    private var startedAt = 0

    /// STREAMON: from here on the driver fills buffers.
    mutating func started() { startedAt = base + events.count - 1 }

    mutating func queued(_ index: BufferIndex) {
        held += 1
        queuedAt[index.rawValue] = base + events.count
        events.append((.queued, held))
    }

    /// A frame dequeued: the frames skipped since the one before, and whose drop they are.
    mutating func dequeued(_ index: BufferIndex, sequence: UInt32, wasDone: Bool) -> (skipped: Int, cause: Cause?) {
        let before = base + events.count  // the point just before this DQBUF
        held -= 1
        events.append((.dequeued(wasDone: wasDone), held))
        let queuedAt = queuedAt[index.rawValue] ?? base
        defer {
            last = (sequence, before, queuedAt)
            // The next gap looks back no further than this frame's own QBUF.
            let stale = min(max(0, queuedAt - base), events.count)
            events.removeFirst(stale)
            base += stale
        }
        guard let last, sequence > last.sequence + 1 else { return (0, nil) }
        let skipped = Int(sequence - last.sequence - 1)
        return (
            skipped,
            lowestEmpty(from: last.queuedAt, earlierDequeue: last.dequeuedAt, to: before) > 0 ? .source : .pipeline
        )
    }

    /// The least the driver can have held empty at any point after event `from` and before
    /// `to`, given that the earlier frame was dequeued by event `earlierDequeue`.
    private func lowestEmpty(from: Int, earlierDequeue: Int, to: Int) -> Int {
        var lowest = Int.max
        for point in max(from, startedAt, base)..<to {
            var waiting = 0
            if point < earlierDequeue {
                for later in (point + 1)...earlierDequeue {
                    guard case .dequeued(let wasDone) = events[later - base].event else { continue }
                    if !wasDone { break }
                    waiting += 1
                }
            }
            lowest = min(lowest, events[point - base].heldAfter - waiting)
        }
        return lowest
    }
}
