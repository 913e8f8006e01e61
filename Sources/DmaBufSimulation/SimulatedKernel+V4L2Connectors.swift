import DmaBufKernel
import Foundation

/// vivid's inputs and outputs, their DV timings and the controls behind its video loopback: an
/// HDMI output's frames come back on an HDMI input while the loop is switched on, both sides
/// stream the same format, and the sizes match the timings (the model has no scaler on an
/// HDMI input: its format is the timings' size). vim2m has no connectors.
extension SimulatedVivid {
    /// vivid's default inputs (vivid-core.c: webcam, TV, S-Video, HDMI) and outputs (S-Video,
    /// HDMI): (kind, V4L2_INPUT_TYPE_*/V4L2_OUTPUT_TYPE_*, capabilities).
    static let inputs: [(kind: String, type: UInt32, capabilities: UInt32)] = [
        ("Webcam", 2, 0), ("TV", 1, 0x4), ("S-Video", 2, 0x4), ("HDMI", 2, 0x2),
    ]
    static let outputs: [(kind: String, type: UInt32, capabilities: UInt32)] = [("S-Video", 2, 0x4), ("HDMI", 2, 0x2)]
    static let webcamInput: UInt32 = 0
    static let hdmiInput: UInt32 = 3
    static let hdmiOutput: UInt32 = 1
    /// V4L2_DV_BT_CEA_1280X720P60, vivid's default timings on both sides.
    static let hdmiSize: (UInt32, UInt32) = (1280, 720)
    /// PAL, what an S-Video or TV connector starts on.
    static let standardSize: (UInt32, UInt32) = (720, 576)

    /// 6.1's "Loop Video" (VIVID_CID_LOOP_VIDEO) and 6.12's "HDMI 00N-0 Is Connected To"
    /// (VIVID_CID_HDMI_IS_CONNECTED_TO_OUTPUT(0)), whose items are "Test Pattern Generator",
    /// "None", then every instance's HDMI output.
    static let loopVideo = V4L2ControlID(rawValue: 0x00f0_f025)
    static let hdmiConnectedTo = V4L2ControlID(rawValue: 0x00f0_f071)

    static func instance(_ device: SimulatedVideoDevice) -> Int { Int(device.name.dropFirst(6).prefix(3)) ?? 0 }

    func connectorName(_ kind: String, of device: SimulatedVideoDevice) -> String {
        kernel.version.vividConnectorNamesCarryInstance
            ? String(format: "%@ %03d-0", kind, Self.instance(device)) : "\(kind) 0"
    }

    /// The controls of a vivid node the model implements (a subset of vivid's), by id.
    func controls(of device: SimulatedVideoDevice) -> [V4L2ControlInfo] {
        var list = [
            V4L2ControlInfo(
                id: VividControl.disconnect, type: .button, name: "Disconnect", minimum: 0, maximum: 0, step: 0,
                defaultValue: 0),
            V4L2ControlInfo(
                id: VividControl.startStreamingError, type: .button, name: "Inject Start Streaming Error", minimum: 0,
                maximum: 0, step: 0, defaultValue: 0),
        ]
        guard device.role == .capture else { return list }
        list +=
            Self.flipControls + [
                V4L2ControlInfo(
                    id: VividControl.testPattern, type: .menu, name: "Test Pattern", minimum: 0,
                    maximum: Int64(Self.testPatterns.count - 1), defaultValue: 0),
                V4L2ControlInfo(
                    id: VividControl.osdTextMode, type: .menu, name: "OSD Text Mode", minimum: 0, maximum: 2,
                    defaultValue: 0),
                V4L2ControlInfo(
                    id: VividControl.horizontalMovement, type: .menu, name: "Horizontal Movement", minimum: 0,
                    maximum: 6,
                    defaultValue: Int64(VividControl.noMovement)),
                V4L2ControlInfo(
                    id: VividControl.verticalMovement, type: .menu, name: "Vertical Movement", minimum: 0, maximum: 6,
                    defaultValue: Int64(VividControl.noMovement)),
                V4L2ControlInfo(
                    id: VividControl.dequeueError, type: .button, name: "Inject V4L2_BUF_FLAG_ERROR", minimum: 0,
                    maximum: 0, step: 0, defaultValue: 0),
            ]
        if kernel.version.vividLoopsThroughConnectionMenus {
            list.append(
                V4L2ControlInfo(
                    id: Self.hdmiConnectedTo, type: .menu,
                    name: String(format: "HDMI %03d-0 Is Connected To", Self.instance(device)), minimum: 0,
                    maximum: Int64(1 + hdmiOutputs().count), defaultValue: 0))
        } else {
            list.append(
                V4L2ControlInfo(
                    id: Self.loopVideo, type: .boolean, name: "Loop Video", minimum: 0, maximum: 1, defaultValue: 0))
        }
        return list.sorted { $0.id.rawValue < $1.id.rawValue }
    }

    /// The standard flips (vim2m's controls, and the model's vivid capture's).
    static let flipControls = [
        V4L2ControlInfo(
            id: V4L2Control.horizontalFlip, type: .boolean, name: "Horizontal Flip", minimum: 0, maximum: 1,
            defaultValue: 0),
        V4L2ControlInfo(
            id: V4L2Control.verticalFlip, type: .boolean, name: "Vertical Flip", minimum: 0, maximum: 1,
            defaultValue: 0),
    ]

    static let testPatterns = [
        "75% Colorbar", "100% Colorbar", "CSC Colorbar", "Horizontal 100% Colorbar", "100% Color Squares",
        "100% Black",
    ]

    /// Every instance's output node, in instance order: the items after the two fixed ones of
    /// an "Is Connected To" menu.
    func hdmiOutputs() -> [SimulatedVideoDevice] { kernel.videoDevices.filter { $0.role == .output } }

    func menuItem(_ device: SimulatedVideoDevice, id: V4L2ControlID, index: UInt32) -> String? {
        switch id {
        case VividControl.testPattern:
            return Self.testPatterns.indices.contains(Int(index)) ? Self.testPatterns[Int(index)] : nil
        case VividControl.osdTextMode:
            return ["All", "Counters Only", "None"].indices.contains(Int(index))
                ? ["All", "Counters Only", "None"][Int(index)] : nil
        case VividControl.horizontalMovement, VividControl.verticalMovement:
            let names = [
                "Move Left Fast", "Move Left", "Move Left Slow", "No Movement", "Move Right Slow", "Move Right",
                "Move Right Fast",
            ]
            return names.indices.contains(Int(index)) ? names[Int(index)] : nil
        case Self.hdmiConnectedTo where kernel.version.vividLoopsThroughConnectionMenus:
            if index == 0 { return "Test Pattern Generator" }
            if index == 1 { return "None" }
            let outputs = hdmiOutputs()
            guard Int(index) - 2 < outputs.count else { return nil }
            return String(format: "Output HDMI %03d-0", Self.instance(outputs[Int(index) - 2]))
        default: return nil
        }
    }

    /// The output queue an HDMI capture node loops from now (lock held): its input is HDMI and
    /// connected (6.12) or the loop is on (6.1), the output is on HDMI and streaming, and both
    /// sides have the same pixel format at the timings' size (vivid_vid_can_loop).
    func loopedOutput(into capture: SimulatedVideoDevice) -> SimulatedVideoQueue? {
        guard capture.role == .capture, capture.connector == Self.hdmiInput, let context = capture.shared,
            let captureQueue = context.queues.first
        else { return nil }
        let output: SimulatedVideoDevice?
        if kernel.version.vividLoopsThroughConnectionMenus {
            let item = Int(context.controls[Self.hdmiConnectedTo] ?? 0)
            let outputs = hdmiOutputs()
            output = item >= 2 && item - 2 < outputs.count ? outputs[item - 2] : nil
        } else {
            output =
                context.controls[Self.loopVideo] == 1
                ? hdmiOutputs().first { Self.instance($0) == Self.instance(capture) } : nil
        }
        guard let output, output.connector == Self.hdmiOutput, let queue = output.shared?.queues.first,
            queue.streaming, queue.pixelFormat == captureQueue.pixelFormat, queue.width == captureQueue.width,
            queue.height == captureQueue.height
        else { return nil }
        return queue
    }

    /// The picture of the output buffer on show (the oldest queued: vivid copies
    /// `vid_out_active.next`), per plane, read from its memory now (lock held).
    func outputPicture(_ queue: SimulatedVideoQueue) -> [[UInt8]]? {
        guard let shown = queue.oldest(.queued) else { return nil }  // -ENODATA: the test pattern instead
        return zip(shown.planes, queue.planeFormats).map { plane, format in
            var bytes = [UInt8](repeating: 0, count: Int(format.sizeImage))
            var filled = 0
            for segment in plane.segments(pageSize: kernel.pageSize) where filled < bytes.count {
                let count = min(Int(segment.size), bytes.count - filled)
                let read = bytes.withUnsafeMutableBytes {
                    pread(segment.memfd.rawValue, $0.baseAddress! + filled, count, off_t(segment.offset))
                }
                filled += max(0, read)
            }
            return bytes
        }
    }
}

extension SimulatedKernel: V4L2ConnectorInterface {
    private func vividNode(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> SimulatedVideoDevice
    {
        let device = try video(fd, operation).device
        if device.disconnected { throw KernelError(operation, .ENODEV) }
        return device
    }

    public func v4l2QueryControl(
        _ fd: FileDescriptorNumber, id: V4L2ControlID, next: Bool
    ) throws(KernelError)
        -> V4L2ControlInfo
    {
        let operation = "VIDIOC_QUERY_EXT_CTRL"
        let device = try vividNode(fd, operation)
        let list: [V4L2ControlInfo] =
            device.role == .mem2mem
            ? SimulatedVivid.flipControls : locked { vivid.controls(of: device) }
        let found = next ? list.first { $0.id.rawValue > id.rawValue } : list.first { $0.id == id }
        guard let found else { throw KernelError(operation, .EINVAL) }
        return found
    }

    public func v4l2QueryMenu(
        _ fd: FileDescriptorNumber, id: V4L2ControlID, index: UInt32
    ) throws(KernelError)
        -> String
    {
        let device = try vividNode(fd, "VIDIOC_QUERYMENU")
        guard device.role != .mem2mem, let name = locked({ vivid.menuItem(device, id: id, index: index) }) else {
            throw KernelError("VIDIOC_QUERYMENU", .EINVAL)
        }
        return name
    }

    private func connectors(
        _ device: SimulatedVideoDevice, _ direction: V4L2ConnectorDirection, _ operation: String
    )
        throws(KernelError) -> [(kind: String, type: UInt32, capabilities: UInt32)]
    {
        switch (device.role, direction) {
        case (.capture, .input): return SimulatedVivid.inputs
        case (.output, .output): return SimulatedVivid.outputs
        default: throw KernelError(operation, .ENOTTY)  // no such ioctl on this node's direction
        }
    }

    public func v4l2EnumConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection, index: UInt32
    ) throws(KernelError) -> V4L2Connector {
        let operation = direction == .input ? "VIDIOC_ENUMINPUT" : "VIDIOC_ENUMOUTPUT"
        let device = try vividNode(fd, operation)
        let list = try connectors(device, direction, operation)
        guard Int(index) < list.count else { throw KernelError(operation, .EINVAL) }
        let connector = list[Int(index)]
        return V4L2Connector(
            index: index, name: vivid.connectorName(connector.kind, of: device), type: connector.type,
            capabilities: connector.capabilities)
    }

    public func v4l2GetConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection
    ) throws(KernelError)
        -> UInt32
    {
        let operation = direction == .input ? "VIDIOC_G_INPUT" : "VIDIOC_G_OUTPUT"
        let device = try vividNode(fd, operation)
        _ = try connectors(device, direction, operation)
        return locked { device.connector }
    }

    /// vidioc_s_input / vidioc_s_output: EBUSY while the queue has buffers; the format becomes
    /// the new connector's (vivid_update_format_cap/_out).
    public func v4l2SetConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection, index: UInt32
    ) throws(KernelError) {
        let operation = direction == .input ? "VIDIOC_S_INPUT" : "VIDIOC_S_OUTPUT"
        let device = try vividNode(fd, operation)
        let list = try connectors(device, direction, operation)
        guard Int(index) < list.count else { throw KernelError(operation, .EINVAL) }
        try locked { () throws(KernelError) in
            guard index != device.connector, let queue = device.shared?.queues.first else { return }
            if !queue.buffers.isEmpty { throw KernelError(operation, .EBUSY) }
            device.connector = index
            let kind = list[Int(index)].kind
            if kind == "HDMI" {
                (queue.width, queue.height) = SimulatedVivid.hdmiSize
            } else if kind != "Webcam" {
                (queue.width, queue.height) = SimulatedVivid.standardSize
            }
        }
    }

    public func v4l2GetDVTimingsSize(
        _ fd: FileDescriptorNumber
    ) throws(KernelError) -> (
        width: UInt32, height: UInt32
    ) {
        let operation = "VIDIOC_G_DV_TIMINGS"
        let device = try vividNode(fd, operation)
        guard device.role != .mem2mem else { throw KernelError(operation, .ENOTTY) }
        let hdmi = locked {
            device.connector == (device.role == .capture ? SimulatedVivid.hdmiInput : SimulatedVivid.hdmiOutput)
        }
        guard hdmi else { throw KernelError(operation, .ENODATA) }
        return SimulatedVivid.hdmiSize
    }
}
