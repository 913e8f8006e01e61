/// DRM on the simulated kernel. No DRM device is modelled yet: every DRM ioctl meets a file
/// that is not a DRM device, which Linux answers with ENOTTY (EBADF for a closed fd).
extension SimulatedKernel {
    private func notDRM<T>(_ fd: FileDescriptorNumber, _ operation: String) throws(KernelError) -> T {
        try requireOpen(fd, operation)
        throw KernelError(operation, .ENOTTY)
    }

    public func drmVersion(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMVersion { try notDRM(fd, "DRM_IOCTL_VERSION") }
    public func drmCapability(_ fd: FileDescriptorNumber, _ capability: UInt64) throws(KernelError) -> UInt64 { try notDRM(fd, "DRM_IOCTL_GET_CAP") }
    public func drmSetClientCapability(_ fd: FileDescriptorNumber, _ capability: UInt64, value: UInt64) throws(KernelError) { try notDRM(fd, "DRM_IOCTL_SET_CLIENT_CAP") as Void }
    public func drmCreateDumb(_ fd: FileDescriptorNumber, width: UInt32, height: UInt32, bitsPerPixel: UInt32) throws(KernelError) -> DRMDumbBuffer { try notDRM(fd, "DRM_IOCTL_MODE_CREATE_DUMB") }
    public func drmMapDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) -> UInt64 { try notDRM(fd, "DRM_IOCTL_MODE_MAP_DUMB") }
    public func drmDestroyDumb(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) { try notDRM(fd, "DRM_IOCTL_MODE_DESTROY_DUMB") as Void }
    public func drmGEMClose(_ fd: FileDescriptorNumber, _ handle: GEMHandle) throws(KernelError) { try notDRM(fd, "DRM_IOCTL_GEM_CLOSE") as Void }
    public func drmPrimeHandleToFD(_ fd: FileDescriptorNumber, _ handle: GEMHandle, flags: UInt32) throws(KernelError) -> FileDescriptorNumber { try notDRM(fd, "DRM_IOCTL_PRIME_HANDLE_TO_FD") }
    public func drmPrimeFDToHandle(_ fd: FileDescriptorNumber, dmaBuf: FileDescriptorNumber) throws(KernelError) -> GEMHandle { try notDRM(fd, "DRM_IOCTL_PRIME_FD_TO_HANDLE") }
    public func drmResources(_ fd: FileDescriptorNumber) throws(KernelError) -> DRMResources { try notDRM(fd, "DRM_IOCTL_MODE_GETRESOURCES") }
    public func drmConnector(_ fd: FileDescriptorNumber, _ id: ConnectorID) throws(KernelError) -> DRMConnectorInfo { try notDRM(fd, "DRM_IOCTL_MODE_GETCONNECTOR") }
    public func drmEncoder(_ fd: FileDescriptorNumber, _ id: EncoderID) throws(KernelError) -> DRMEncoderInfo { try notDRM(fd, "DRM_IOCTL_MODE_GETENCODER") }
    public func drmPlanes(_ fd: FileDescriptorNumber) throws(KernelError) -> [PlaneID] { try notDRM(fd, "DRM_IOCTL_MODE_GETPLANERESOURCES") }
    public func drmPlane(_ fd: FileDescriptorNumber, _ id: PlaneID) throws(KernelError) -> DRMPlaneInfo { try notDRM(fd, "DRM_IOCTL_MODE_GETPLANE") }
    public func drmObjectProperties(_ fd: FileDescriptorNumber, _ object: DRMObjectID, type: DRMObjectType) throws(KernelError) -> [PropertyID: UInt64] { try notDRM(fd, "DRM_IOCTL_MODE_OBJ_GETPROPERTIES") }
    public func drmProperty(_ fd: FileDescriptorNumber, _ id: PropertyID) throws(KernelError) -> DRMPropertyInfo { try notDRM(fd, "DRM_IOCTL_MODE_GETPROPERTY") }
    public func drmCreateBlob(_ fd: FileDescriptorNumber, _ bytes: [UInt8]) throws(KernelError) -> BlobID { try notDRM(fd, "DRM_IOCTL_MODE_CREATEPROPBLOB") }
    public func drmBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) -> [UInt8] { try notDRM(fd, "DRM_IOCTL_MODE_GETPROPBLOB") }
    public func drmDestroyBlob(_ fd: FileDescriptorNumber, _ id: BlobID) throws(KernelError) { try notDRM(fd, "DRM_IOCTL_MODE_DESTROYPROPBLOB") as Void }
    public func drmAddFramebuffer(_ fd: FileDescriptorNumber, _ request: DRMFramebufferRequest) throws(KernelError) -> FramebufferID { try notDRM(fd, "DRM_IOCTL_MODE_ADDFB2") }
    public func drmRemoveFramebuffer(_ fd: FileDescriptorNumber, _ id: FramebufferID) throws(KernelError) { try notDRM(fd, "DRM_IOCTL_MODE_RMFB") as Void }
    public func drmAtomicCommit(_ fd: FileDescriptorNumber, _ properties: [DRMAtomicProperty], flags: UInt32, userData: UInt64) throws(KernelError) { try notDRM(fd, "DRM_IOCTL_MODE_ATOMIC") as Void }
    public func drmReadEvents(_ fd: FileDescriptorNumber) throws(KernelError) -> [DRMEvent] { try notDRM(fd, "read") }
}
