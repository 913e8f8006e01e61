import DmaBufKernel

/// Whose fault a skipped capture sequence number is, from what the pipeline knew of the queue.
///
/// A capture driver loses a frame when it has no empty buffer at the moment the frame is due,
/// or when its own thread runs late and skips frames while empty buffers wait (vivid under
/// load: it counts the periods it slept through). Without an empty buffer, either the pipeline
/// held every buffer (its design keeps too few queued: that does not depend on the machine's
/// load), or buffers were queued but all filled, waiting for a pipeline that was late to take
/// them (slow, or not scheduled: a busy machine does that to any pipeline). The pipeline sees
/// only its own QBUFs and DQBUFs, and for each DQBUF whether the frame was already done when it
/// asked (a non-blocking DQBUF first). From that it knows, at every moment between two frames,
/// how many buffers the driver held, and bounds how many of them were empty:
/// - after the earlier frame was dequeued: every buffer the driver holds is empty until the
///   later frame fills one, so the bound is the count held;
/// - before it (from when that frame's buffer was queued): the count held, less the frames that
///   may already have been waiting — the DQBUFs from then on that found their frame done, up to
///   the first that had to wait (frames fill in order: nothing after it was done yet).
/// A gap is the pipeline's when the driver held no buffer at some moment in between; it is the
/// late pipeline's when the driver held buffers but the bound of empty ones reaches 0 (frames
/// found done lower it: load cannot make a late pipeline look like a late source); otherwise
/// the driver always had an empty buffer and the source was late.
struct CaptureLedger {
    enum Cause: Equatable {
        /// The driver held no buffer: the pipeline had them all.
        case pipeline
        /// Every buffer the driver held may have been filled, waiting to be dequeued.
        case late
        /// The driver had an empty buffer throughout: its own thread ran late.
        case source
    }

    private enum Event { case queued, dequeued(wasDone: Bool) }
    /// Events since the oldest point a later gap can need, with the count held after each.
    private var events: [(event: Event, heldAfter: Int)] = []
    /// The absolute number of `events[0]`.
    private var base = 0
    /// Buffers queued to the driver and not dequeued.
    private(set) var held = 0
    /// Per buffer index (a few, from 0: a list, not a dictionary): the absolute number of its
    /// latest QBUF event.
    private var queuedAt: [Int?] = []
    private var last: (sequence: UInt32, dequeuedAt: Int, queuedAt: Int)?
    /// The sequence number of the frame dequeued last.
    var lastSequence: UInt32? { last?.sequence }
    /// The point at STREAMON: before it the driver fills nothing.
    private var startedAt = 0

    /// STREAMON: from here on the driver fills buffers.
    mutating func started() { startedAt = base + events.count - 1 }

    mutating func queued(_ index: BufferIndex) {
        held += 1
        let slot = Int(index.rawValue)
        if slot >= queuedAt.count { queuedAt += repeatElement(nil, count: slot + 1 - queuedAt.count) }
        queuedAt[slot] = base + events.count
        events.append((.queued, held))
    }

    /// A frame dequeued: the frames skipped since the one before, and whose drop they are.
    mutating func dequeued(_ index: BufferIndex, sequence: UInt32, wasDone: Bool) -> (skipped: Int, cause: Cause?) {
        let before = base + events.count  // the point just before this DQBUF
        held -= 1
        events.append((.dequeued(wasDone: wasDone), held))
        let slot = Int(index.rawValue)
        let queuedAt = (slot < queuedAt.count ? queuedAt[slot] : nil) ?? base
        defer {
            last = (sequence, before, queuedAt)
            // The next gap looks back no further than this frame's own QBUF.
            let stale = min(max(0, queuedAt - base), events.count)
            events.removeFirst(stale)
            base += stale
        }
        guard let last, sequence > last.sequence + 1 else { return (0, nil) }
        let skipped = Int(sequence - last.sequence - 1)
        let bound = lowest(from: last.queuedAt, earlierDequeue: last.dequeuedAt, to: before)
        return (skipped, bound.held == 0 ? .pipeline : bound.empty > 0 ? .source : .late)
    }

    /// The fewest buffers the driver held, and the least it can have held empty, at any point
    /// after event `from` and before `to`, given that the earlier frame was dequeued by event
    /// `earlierDequeue`.
    private func lowest(from: Int, earlierDequeue: Int, to: Int) -> (held: Int, empty: Int) {
        var (lowestHeld, lowestEmpty) = (Int.max, Int.max)
        for point in max(from, startedAt, base)..<to {
            var waiting = 0
            if point < earlierDequeue {
                for later in (point + 1)...earlierDequeue {
                    guard case .dequeued(let wasDone) = events[later - base].event else { continue }
                    if !wasDone { break }
                    waiting += 1
                }
            }
            lowestHeld = min(lowestHeld, events[point - base].heldAfter)
            lowestEmpty = min(lowestEmpty, events[point - base].heldAfter - waiting)
        }
        return (lowestHeld, lowestEmpty)
    }
}
