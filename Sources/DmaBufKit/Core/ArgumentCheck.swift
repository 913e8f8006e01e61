import DmaBufKernel

/// A caller's integer for a kernel field, checked before any ioctl: a value the field cannot
/// hold (negative, too wide) is the caller's EINVAL with the reason, never a trap.
func checkedArgument<T: FixedWidthInteger>(
    _ value: Int, _ name: String, as type: T.Type = T.self, in range: ClosedRange<Int>? = nil, operation: String,
    path: String?
) throws(KernelError) -> T {
    guard let converted = T(exactly: value), range?.contains(value) ?? true else {
        let allowed = range.map { "\($0.lowerBound)…\($0.upperBound)" } ?? "\(T.min)…\(T.max), the kernel field's range"
        throw KernelError(
            operation, .EINVAL, path: path, reason: "\(name) \(value) is out of range (\(allowed)); no ioctl issued")
    }
    return converted
}

/// Refuses lengths no allocator can honour, before any ioctl is issued.
func validateLength(_ length: Int, operation: String, path: String, kernel: any Kernel) throws(KernelError) {
    if length <= 0 {
        throw KernelError(
            operation, .EINVAL, path: path,
            reason: "length \(length) is not a buffer size (must be > 0); no ioctl issued")
    }
    let memory = kernel.physicalMemory
    if memory > 0 && UInt64(length) > memory {
        throw KernelError(
            operation, .ENOMEM, path: path,
            reason: "length \(length) exceeds physical memory (\(memory) bytes); no ioctl issued")
    }
}
