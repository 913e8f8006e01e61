import DmaBufKernel

/// An output node's frames coming back on a capture node: vivid's video loopback (see
/// Documentation/admin-guide/media/vivid.rst, "Video and Sliced VBI looping"). Both sides go to
/// a connector with digital video timings (HDMI), and the loop is switched on by the control
/// the driver offers, found by its name: a menu "<input> Is Connected To" whose item
/// "Output <output>" routes that output to the input (Linux 6.9 on, across instances too), or a
/// boolean "Loop Video" (earlier: an instance's output into its own input). The frames loop
/// only while both sides stream one pixel format at the timings' size.
public struct VideoLoopback: Sendable {
    public let output: V4L2Connector
    public let input: V4L2Connector
    /// The timings' frame size, the same on both sides.
    public let width: UInt32
    public let height: UInt32
    /// The control that switched the loop on and its value, as the driver names them.
    public let switchedBy: String
    private let previousOutput: V4L2Connector
    private let previousInput: V4L2Connector
    private let loopSwitch: (id: V4L2ControlID, previous: Int32)

    /// Switches `outputNode`'s frames into `captureNode`; `disconnect` undoes it. Throws, with
    /// what was found, when either side has no such connector, the capture node no loop switch,
    /// or the two timings differ (nothing is left switched then).
    public static func connect(
        output outputNode: borrowing V4L2Device, capture captureNode: borrowing V4L2Device
    ) throws(KernelError) -> VideoLoopback {
        let outputs = try outputNode.connectors(.output)
        guard let output = outputs.first(where: \.hasDVTimings) else {
            throw KernelError(
                "VIDIOC_ENUMOUTPUT", .EOPNOTSUPP, path: outputNode.path,
                reason:
                    "no output with digital video timings (HDMI) to loop (outputs: \(outputs.map(\.name).joined(separator: ", ")))"
            )
        }
        let inputs = try captureNode.connectors(.input)
        let kind = output.name.split(separator: " ").first.map(String.init) ?? output.name
        guard let input = inputs.first(where: { $0.hasDVTimings && $0.name.hasPrefix(kind) }) else {
            throw KernelError(
                "VIDIOC_ENUMINPUT", .EOPNOTSUPP, path: captureNode.path,
                reason:
                    "no \(kind) input to loop \(output.name) into (inputs: \(inputs.map(\.name).joined(separator: ", ")))"
            )
        }
        let controls = try captureNode.controls()
        let loopSwitch: (id: V4L2ControlID, value: Int32, text: String)
        if let menu = controls.first(where: { $0.type == .menu && $0.name == "\(input.name) Is Connected To" }) {
            let items = try captureNode.menuItems(menu)
            guard let item = items.first(where: { $0.name == "Output \(output.name)" }) else {
                throw KernelError(
                    "VIDIOC_QUERYMENU", .EOPNOTSUPP, path: captureNode.path,
                    reason:
                        "“\(menu.name)” offers no “Output \(output.name)” (items: \(items.map(\.name).joined(separator: ", ")))"
                )
            }
            loopSwitch = (menu.id, Int32(item.index), "“\(menu.name)” = “\(item.name)”")
        } else if let loop = controls.first(where: { $0.type == .boolean && $0.name == "Loop Video" }) {
            loopSwitch = (loop.id, 1, "“\(loop.name)” = 1")
        } else {
            throw KernelError(
                "VIDIOC_QUERY_EXT_CTRL", .EOPNOTSUPP, path: captureNode.path,
                reason:
                    "no loopback switch: neither a menu “\(input.name) Is Connected To” nor a boolean “Loop Video” among its \(controls.count) controls"
            )
        }
        let previousOutput = try outputNode.connector(.output)
        let previousInput = try captureNode.connector(.input)
        let previousSwitch = try captureNode.control(loopSwitch.id)
        try outputNode.select(output, .output)
        do throws(KernelError) {
            try captureNode.select(input, .input)
            do throws(KernelError) {
                let sent = try outputNode.dvTimingsSize(), received = try captureNode.dvTimingsSize()
                guard sent == received else {
                    throw KernelError(
                        "VIDIOC_G_DV_TIMINGS", .EINVAL, path: captureNode.path,
                        reason:
                            "\(input.name) runs \(received.width)x\(received.height), \(output.name) \(sent.width)x\(sent.height): a loop needs the same timings"
                    )
                }
                try captureNode.setControl(loopSwitch.id, loopSwitch.value)
                return VideoLoopback(
                    output: output, input: input, width: sent.width, height: sent.height, switchedBy: loopSwitch.text,
                    previousOutput: previousOutput, previousInput: previousInput,
                    loopSwitch: (loopSwitch.id, previousSwitch))
            } catch {
                try? captureNode.select(previousInput, .input)
                throw error
            }
        } catch {
            try? outputNode.select(previousOutput, .output)
            throw error
        }
    }

    /// The loop switched back, and both nodes on the connectors they had (their queues must
    /// hold no buffers by then).
    public func disconnect(
        output outputNode: borrowing V4L2Device, capture captureNode: borrowing V4L2Device
    )
        throws(KernelError)
    {
        try captureNode.setControl(loopSwitch.id, loopSwitch.previous)
        try captureNode.select(previousInput, .input)
        try outputNode.select(previousOutput, .output)
    }
}
