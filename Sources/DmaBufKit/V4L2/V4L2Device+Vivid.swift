import DmaBufKernel

extension V4L2Device {
    /// Makes vivid's picture depend on nothing but the format: 75% colour bars, no OSD text,
    /// nothing moving. Frames then repeat exactly.
    public func makeVividDeterministic() throws(KernelError) {
        try setControl(VividControl.testPattern, 0)
        try setControl(VividControl.osdTextMode, VividControl.osdNone)
        try setControl(VividControl.horizontalMovement, VividControl.noMovement)
        try setControl(VividControl.verticalMovement, VividControl.noMovement)
    }
}
