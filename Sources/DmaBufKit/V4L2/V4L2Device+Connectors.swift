import DmaBufKernel

extension V4L2Device {
    /// The node's inputs or outputs (`VIDIOC_ENUMINPUT`/`ENUMOUTPUT` until EINVAL).
    public func connectors(_ direction: V4L2ConnectorDirection) throws(KernelError) -> [V4L2Connector] {
        try enumerate { index throws(KernelError) in
            try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2EnumConnector(fd, direction, index: index)
            }
        }
    }

    /// The input or output in use (`VIDIOC_G_INPUT`/`G_OUTPUT`).
    public func connector(_ direction: V4L2ConnectorDirection) throws(KernelError) -> V4L2Connector {
        let index = try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.v4l2GetConnector(fd, direction)
        }
        return try descriptor.perform { kernel, fd throws(KernelError) in
            try kernel.v4l2EnumConnector(fd, direction, index: index)
        }
    }

    /// `VIDIOC_S_INPUT`/`S_OUTPUT`: the format becomes the connector's.
    public func select(_ connector: V4L2Connector, _ direction: V4L2ConnectorDirection) throws(KernelError) {
        do {
            try descriptor.perform { kernel, fd throws(KernelError) in
                try kernel.v4l2SetConnector(fd, direction, index: connector.index)
            }
        } catch {
            throw error.explained(
                error.errno == .EBUSY
                    ? "the queue is busy: buffers exist, so the \(direction == .input ? "input" : "output") cannot change to \(connector.name) until they are released"
                    : "cannot switch to \(connector.name)")
        }
    }

    /// The frame size of the connector's digital video timings (`VIDIOC_G_DV_TIMINGS`).
    public func dvTimingsSize() throws(KernelError) -> (width: UInt32, height: UInt32) {
        try descriptor.perform { kernel, fd throws(KernelError) in try kernel.v4l2GetDVTimingsSize(fd) }
    }

    /// Every control of the node (`VIDIOC_QUERY_EXT_CTRL` with `V4L2_CTRL_FLAG_NEXT_CTRL` from 0
    /// until EINVAL), in the driver's order.
    public func controls() throws(KernelError) -> [V4L2ControlInfo] {
        var found: [V4L2ControlInfo] = []
        var last = V4L2ControlID(rawValue: 0)
        while true {
            do {
                let next = try descriptor.perform { kernel, fd throws(KernelError) in
                    try kernel.v4l2QueryControl(fd, id: last, next: true)
                }
                // A driver that answers the same id again would loop forever.
                guard next.id.rawValue > last.rawValue || found.isEmpty else { return found }
                found.append(next)
                last = next.id
            } catch  where error.errno == .EINVAL {
                return found
            }
        }
    }

    /// The items of a menu control by index (`VIDIOC_QUERYMENU` over its range; the driver may
    /// skip some).
    public func menuItems(_ control: V4L2ControlInfo) throws(KernelError) -> [(index: Int64, name: String)] {
        guard control.type == .menu, control.minimum <= control.maximum, control.maximum - control.minimum < 1024
        else { return [] }
        var items: [(Int64, String)] = []
        for index in control.minimum...control.maximum {
            do {
                items.append(
                    (
                        index,
                        try descriptor.perform { kernel, fd throws(KernelError) in
                            try kernel.v4l2QueryMenu(fd, id: control.id, index: UInt32(index))
                        }
                    ))
            } catch  where error.errno == .EINVAL {
                continue
            }
        }
        return items
    }
}
