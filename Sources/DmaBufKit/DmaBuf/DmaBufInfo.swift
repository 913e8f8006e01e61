import DmaBufKernel

/// A dma-buf as `/proc/self/fdinfo/<fd>` describes it.
public struct DmaBufInfo: Hashable, Sendable, Codable {
    public var size: UInt64
    /// References to the dma-buf's file: descriptors plus mappings plus importers.
    public var count: Int
    /// The exporter, e.g. `system`, `reserved`, `udmabuf`, or a DRM driver.
    public var exporter: String
    /// The debug name set with `DMA_BUF_SET_NAME`, if any.
    public var name: String?
    public var inode: UInt64

    /// Parses fdinfo text; nil when it lacks the dma-buf lines (the fd is not a dma-buf).
    public init?(fdinfo text: String) {
        let fields = KernelPaths.fdinfoFields(text)
        guard let size = fields["size"].flatMap({ UInt64($0) }), let exporter = fields["exp_name"] else { return nil }
        self.size = size
        self.exporter = String(exporter)
        self.count = fields["count"].flatMap { Int($0) } ?? 0
        self.name = fields["name"].map(String.init)
        self.inode = fields["ino"].flatMap { UInt64($0) } ?? 0
    }
}

extension DmaBufInfo {
    /// Every dma-buf alive in the system, from debugfs `dma_buf/bufinfo` (needs root and
    /// debugfs): what shows a buffer nobody holds an fd to, or a leak in another process.
    public static func systemWide(kernel: any Kernel) throws(KernelError) -> [DmaBufInfo] {
        try kernel.readFile(KernelPaths.dmaBufDebugList).split(separator: "\n").compactMap(
            DmaBufInfo.init(bufinfoLine:))
    }

    /// One object line of bufinfo, as dma_buf_debug_show prints it:
    /// `size\tflags\tmode\tcount\texp_name\tino\tname` (name `<none>` when unset).
    init?(bufinfoLine line: Substring) {
        let fields = line.split(separator: "\t", maxSplits: 6, omittingEmptySubsequences: false)
        guard fields.count == 7, let size = UInt64(fields[0]), let count = Int(fields[3]), let inode = UInt64(fields[5])
        else { return nil }
        self.size = size
        self.count = count
        self.exporter = String(fields[4])
        self.inode = inode
        self.name = fields[6] == "<none>" ? nil : String(fields[6])
    }
}
