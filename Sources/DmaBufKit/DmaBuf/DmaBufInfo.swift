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
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...].drop { $0 == "\t" || $0 == " " }
        }
        guard let size = fields["size"].flatMap({ UInt64($0) }), let exporter = fields["exp_name"] else { return nil }
        self.size = size
        self.exporter = String(exporter)
        self.count = fields["count"].flatMap { Int($0) } ?? 0
        self.name = fields["name"].map(String.init)
        self.inode = fields["ino"].flatMap { UInt64($0) } ?? 0
    }
}
