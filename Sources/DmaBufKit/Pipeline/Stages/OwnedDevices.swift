import DmaBufKernel

/// Devices and queues a run's stages hold. A V4L2 queue a stage owns for the run: borrowed for each call, released once at the end
/// (STREAMOFF, REQBUFS(0)), and by its deinit if the run ends by an error before that.
final class OwnedQueue {
    private var queue: V4L2Queue?
    let fd: FileDescriptorNumber
    let path: String
    let indices: [BufferIndex]
    let memory: V4L2Memory

    init(_ queue: consuming V4L2Queue) {
        (fd, path, indices, memory) = (queue.fd, queue.path, queue.indices, queue.memory)
        self.queue = consume queue
    }

    @discardableResult
    func with<R: ~Copyable>(_ body: (borrowing V4L2Queue) throws -> R) throws -> R {
        switch queue {
        case .some(let queue): return try body(queue)
        case .none: throw InternalError("the queue of \(path) was used after its release")
        }
    }

    func release() throws {
        if let queue = queue.take() { try queue.release() }
    }

    /// Every buffer exported as a dma-buf (EXPBUF), each in a slot appended to `slots` before
    /// its export, so that the caller's cleanup closes what was made if one fails.
    func exportAll(into slots: inout [PipelineSlot]) throws {
        for index in indices {
            let slot = PipelineSlot()
            slots.append(slot)
            slot.dmaBuf = try with { try $0.export(index) }
        }
    }
}

/// A video node held for a run where a borrow cannot reach (an optional one, a class's).
final class OwnedVideoDevice {
    private var device: V4L2Device?
    let path: String
    let capability: V4L2Capability

    init(_ device: consuming V4L2Device) {
        (path, capability) = (device.path, device.capability)
        self.device = consume device
    }

    @discardableResult
    func with<R: ~Copyable>(_ body: (borrowing V4L2Device) throws -> R) throws -> R {
        switch device {
        case .some(let device): return try body(device)
        case .none: throw InternalError("\(path) was used after it was closed")
        }
    }

    func close() throws {
        if let device = device.take() { try device.close() }
    }
}

/// A DRM device held for a run where a borrow cannot reach.
final class OwnedDRMDevice {
    private var device: DRMDevice?
    let path: String
    let driver: String

    init(_ device: consuming DRMDevice) {
        (path, driver) = (device.path, device.driver)
        self.device = consume device
    }

    @discardableResult
    func with<R: ~Copyable>(_ body: (borrowing DRMDevice) throws -> R) throws -> R {
        switch device {
        case .some(let device): return try body(device)
        case .none: throw InternalError("\(path) was used after it was closed")
        }
    }

    func close() throws {
        if let device = device.take() { try device.close() }
    }
}
