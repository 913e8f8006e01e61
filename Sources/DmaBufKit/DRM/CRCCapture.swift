import DmaBufKernel

/// Frame CRCs a driver computes for a CRTC, from debugfs `dri/<minor>/crtc-<n>/crc` where the
/// driver offers them (vkms computes them in its composer): a way to prove what was shown
/// without a writeback connector. Capturing starts when opened and stops when closed.
public struct CRCCapture: ~Copyable {
    public let data: OwnedDescriptor

    public static func directory(minor: Int, crtcIndex: Int) -> String {
        "/sys/kernel/debug/dri/\(minor)/crtc-\(crtcIndex)/crc"
    }

    /// Selects `source` ("auto": the driver's default) and opens the data file.
    public init(device: borrowing DRMDevice, crtcIndex: Int = 0, source: String = "auto") throws(KernelError) {
        guard let minor = Int(device.path.drop { !$0.isNumber }) else {
            throw KernelError(
                "open", .EINVAL, path: device.path, reason: "cannot tell the DRM minor from the node name")
        }
        let directory = Self.directory(minor: minor, crtcIndex: crtcIndex)
        do {
            try device.kernel.writeFile("\(directory)/control", source)
            data = try device.kernel.openOwned("\(directory)/data", flags: [.closeOnExec])
        } catch {
            throw error.explained(
                error.errno == .ENOENT
                    ? "no CRC capture here: needs debugfs, root, and a driver that computes CRCs" : nil)
        }
    }

    /// The next entry (blocks until the driver produced one): the frame number (nil when the
    /// driver gives none) and the CRC values.
    public func next() throws(KernelError) -> (frame: UInt32?, values: [UInt32]) {
        let bytes = try data.perform { kernel, fd throws(KernelError) in try kernel.read(fd, maxLength: 256) }
        let fields = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        func hex(_ text: Substring) -> UInt32? { UInt32(text.dropFirst(2), radix: 16) }
        guard let first = fields.first else {
            throw KernelError("read", .EIO, path: data.path, reason: "empty CRC entry")
        }
        return (hex(first), fields.dropFirst().compactMap(hex))
    }

    public consuming func close() throws(KernelError) { try data.close() }
}
