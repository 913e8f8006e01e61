import DmaBufKernel

/// Advice for a device node that would not open, in the user's terms.
func deviceOpenAdvice(_ error: KernelError, node: String) -> String? {
    switch error.errno {
    case .EACCES, .EPERM:
        "no permission to open \(node): run as root, or add a udev rule giving your group access (e.g. MODE=\"0660\", GROUP=\"video\")"
    case .ENOENT:
        KernelOption.providing(node) == KernelOption.unknown
            ? "\(node) does not exist"
            : "\(node) does not exist: the kernel lacks the driver (\(KernelOption.providing(node)))"
    default: nil
    }
}

/// The kernel options behind each facility, for "what is missing" messages.
public enum KernelOption {
    public static func providing(_ node: String) -> String {
        if node.hasPrefix("\(KernelPaths.dmaHeapDirectory)/system") { return "CONFIG_DMABUF_HEAPS_SYSTEM" }
        if node.hasPrefix(KernelPaths.dmaHeapDirectory) {
            return "CONFIG_DMABUF_HEAPS, CONFIG_DMABUF_HEAPS_SYSTEM or CONFIG_DMABUF_HEAPS_CMA"
        }
        if node == KernelPaths.udmabuf { return "CONFIG_UDMABUF" }
        if node == KernelPaths.swSync { return "CONFIG_SW_SYNC and debugfs mounted at /sys/kernel/debug" }
        return unknown
    }

    /// What `providing` says of a node no option is known for (a device a driver makes).
    public static let unknown = "unknown option"
}
