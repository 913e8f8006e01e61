internal import CDmaBuf

extension LinuxKernel: V4L2ConnectorInterface {
    public func v4l2QueryControl(
        _ fd: FileDescriptorNumber, id: V4L2ControlID, next: Bool
    ) throws(KernelError)
        -> V4L2ControlInfo
    {
        var info = cdmabuf_v4l2_control_info()
        let asked = next ? id.rawValue | V4L2ControlInfo.nextControlFlag : id.rawValue
        _ = try call("VIDIOC_QUERY_EXT_CTRL") { cdmabuf_v4l2_query_ext_ctrl(fd.rawValue, asked, &info) }
        return V4L2ControlInfo(
            id: V4L2ControlID(rawValue: info.id), type: V4L2ControlType(rawValue: info.type),
            name: withUnsafeBytes(of: info.name) { Self.string($0) }, minimum: info.minimum, maximum: info.maximum,
            step: info.step, defaultValue: info.default_value, flags: info.flags)
    }

    public func v4l2QueryMenu(
        _ fd: FileDescriptorNumber, id: V4L2ControlID, index: UInt32
    ) throws(KernelError)
        -> String
    {
        var name = [CChar](repeating: 0, count: 32)
        _ = try call("VIDIOC_QUERYMENU") { cdmabuf_v4l2_querymenu(fd.rawValue, id.rawValue, index, &name) }
        return Self.string(name)
    }

    public func v4l2EnumConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection, index: UInt32
    ) throws(KernelError) -> V4L2Connector {
        var connector = cdmabuf_v4l2_connector()
        switch direction {
        case .input: _ = try call("VIDIOC_ENUMINPUT") { cdmabuf_v4l2_enum_input(fd.rawValue, index, &connector) }
        case .output: _ = try call("VIDIOC_ENUMOUTPUT") { cdmabuf_v4l2_enum_output(fd.rawValue, index, &connector) }
        }
        return V4L2Connector(
            index: connector.index, name: withUnsafeBytes(of: connector.name) { Self.string($0) },
            type: connector.type, capabilities: connector.capabilities)
    }

    public func v4l2GetConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection
    ) throws(KernelError)
        -> UInt32
    {
        var index: UInt32 = 0
        switch direction {
        case .input: _ = try call("VIDIOC_G_INPUT") { cdmabuf_v4l2_g_input(fd.rawValue, &index) }
        case .output: _ = try call("VIDIOC_G_OUTPUT") { cdmabuf_v4l2_g_output(fd.rawValue, &index) }
        }
        return index
    }

    public func v4l2SetConnector(
        _ fd: FileDescriptorNumber, _ direction: V4L2ConnectorDirection, index: UInt32
    ) throws(KernelError) {
        switch direction {
        case .input: _ = try call("VIDIOC_S_INPUT") { cdmabuf_v4l2_s_input(fd.rawValue, index) }
        case .output: _ = try call("VIDIOC_S_OUTPUT") { cdmabuf_v4l2_s_output(fd.rawValue, index) }
        }
    }

    public func v4l2GetDVTimingsSize(
        _ fd: FileDescriptorNumber
    ) throws(KernelError) -> (
        width: UInt32, height: UInt32
    ) {
        var (width, height): (UInt32, UInt32) = (0, 0)
        _ = try call("VIDIOC_G_DV_TIMINGS") { cdmabuf_v4l2_g_dv_timings_size(fd.rawValue, &width, &height) }
        return (width, height)
    }
}
