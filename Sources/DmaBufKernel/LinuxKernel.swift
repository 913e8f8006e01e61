internal import CDmaBuf

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The real kernel, through the C shim. Each shim function has exactly one caller here.
public final class LinuxKernel: Kernel {
    /// Read once: glibc answers it with a sysinfo(2) call, which would otherwise double the
    /// syscalls of every allocation (each checks its length against it).
    public let physicalMemory: UInt64

    /// Read once too: every allocation rounds its length to it.
    public let pageSize: Int

    public init() { (physicalMemory, pageSize) = (cdmabuf_physical_memory(), Int(cdmabuf_page_size())) }

    public var kind: String { "linux" }
    public var pacesFrames: Bool { true }

    /// Runs a shim call, retrying EINTR, and turns `-errno` into a `KernelError`.
    @inline(__always)
    func call(_ operation: String, _ body: () -> Int32) throws(KernelError) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            if result == -EINTR { continue }
            throw KernelError(operation, Errno(rawValue: -result))
        }
    }

    @inline(__always)
    func newFD(_ operation: String, _ body: () -> Int32) throws(KernelError) -> FileDescriptorNumber {
        FileDescriptorNumber(rawValue: try call(operation, body))
    }

    public func kernelRelease() throws(KernelError) -> String {
        var buffer = [CChar](repeating: 0, count: 65)
        _ = try call("uname") { cdmabuf_kernel_release(&buffer, buffer.count) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func string(_ raw: UnsafeRawBufferPointer) -> String {
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
