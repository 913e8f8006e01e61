import DmaBufKernel

/// What `drm_info`/`modetest` and `v4l2-ctl --all` users look at, read through the same layers
/// the probe tries things with (`dmabuf-probe --inventory`): KMS objects of every DRM card
/// node, and every V4L2 video node's capabilities, formats and frame sizes. Nothing is tried.
public struct DeviceInventory: Codable, Sendable, Equatable {
    public var schemaVersion = 1
    public var drm: [DRM]
    public var v4l2: [Video]

    public struct DRM: Codable, Sendable, Equatable {
        public var path: String
        public var driver: String
        /// Why the KMS part is absent (a render-only driver such as vgem), or the error.
        public var reason: String?
        public var crtcs: [UInt32] = []
        public var encoders: [Encoder] = []
        public var connectors: [Connector] = []
        public var planes: [Plane] = []
    }

    public struct Encoder: Codable, Sendable, Equatable {
        public var id: UInt32
        public var type: String
        /// Bit masks over the CRTCs and encoders, as the kernel reports them.
        public var possibleCRTCs: UInt32
        public var possibleClones: UInt32
    }

    public struct Connector: Codable, Sendable, Equatable {
        public var id: UInt32
        /// `Virtual-1`, `Writeback-1`: type and index, as sysfs and modetest name it.
        public var name: String
        public var status: String
        public var encoders: [UInt32]
        public var modes: [Mode]
        /// A writeback connector's WRITEBACK_PIXEL_FORMATS.
        public var writebackFormats: [String]?
    }

    public struct Mode: Codable, Sendable, Equatable {
        public var name: String
        public var width: Int
        public var height: Int
        public var refresh: Int
        public var clockKHz: Int
    }

    public struct Plane: Codable, Sendable, Equatable {
        public var id: UInt32
        public var type: String
        public var possibleCRTCs: UInt32
        public var formats: [String]
        /// IN_FORMATS: modifiers (hex) per format; absent when the plane has no such property.
        public var modifiers: [String: [String]]?
    }

    public struct Video: Codable, Sendable, Equatable {
        public var path: String
        public var name: String
        public var driver: String = ""
        public var card: String = ""
        public var busInfo: String = ""
        /// What the whole device does, and this node (v4l2-ctl's words).
        public var capabilities: [String] = []
        public var deviceCaps: [String] = []
        public var queues: [Queue] = []
        public var reason: String?
    }

    public struct Queue: Codable, Sendable, Equatable {
        public var type: String
        public var formats: [Format]
    }

    public struct Format: Codable, Sendable, Equatable {
        public var fourcc: String
        /// `640x480`, or `16-1920/2 x 16-1080/2` for a stepwise range.
        public var sizes: [String]
    }

    /// v4l2-ctl's names of the V4L2_CAP_* bits.
    static let capabilityNames: [(UInt32, String)] = [
        (0x1, "Video Capture"), (0x2, "Video Output"), (0x4, "Video Overlay"), (0x10, "VBI Capture"),
        (0x20, "VBI Output"), (0x40, "Sliced VBI Capture"), (0x80, "Sliced VBI Output"), (0x100, "RDS Capture"),
        (0x200, "Video Output Overlay"), (0x400, "HW Frequency Seek"), (0x800, "RDS Output"),
        (0x1000, "Video Capture Multiplanar"), (0x2000, "Video Output Multiplanar"),
        (0x4000, "Video Memory-to-Memory Multiplanar"), (0x8000, "Video Memory-to-Memory"), (0x10000, "Tuner"),
        (0x20000, "Audio"), (0x40000, "Radio"), (0x80000, "Modulator"), (0x100000, "SDR Capture"),
        (0x200000, "Extended Pix Format"), (0x400000, "SDR Output"), (0x800000, "Metadata Capture"),
        (0x1000000, "Read/Write"), (0x4000000, "Streaming"), (0x8000000, "Metadata Output"),
        (0x10000000, "Touch Device"),
        (0x20000000, "I/O MC"), (0x80000000, "Device Capabilities"),
    ]

    static func names(_ caps: V4L2Capabilities) -> [String] {
        capabilityNames.filter { caps.rawValue & $0.0 != 0 }.map(\.1)
    }

    static func typeName(_ type: V4L2BufferType) -> String {
        switch type {
        case .videoCapture: "video-capture"
        case .videoOutput: "video-output"
        case .videoCaptureMultiplanar: "video-capture-mplane"
        case .videoOutputMultiplanar: "video-output-mplane"
        }
    }
}

extension Probe {
    /// Every DRM card node and V4L2 video node, as the kernel describes them.
    public func inventory() -> DeviceInventory {
        var drm: [DeviceInventory.DRM] = []
        for path in (try? DRMDevice.nodes(kernel: kernel)) ?? [] {
            drm.append(kmsInventory(path))
        }
        var video: [DeviceInventory.Video] = []
        for node in (try? V4L2Device.nodes(kernel: kernel)) ?? [] {
            video.append(videoInventory(node.path, name: node.name))
        }
        return DeviceInventory(drm: drm, v4l2: video)
    }

    func kmsInventory(_ path: String) -> DeviceInventory.DRM {
        var entry = DeviceInventory.DRM(path: path, driver: "")
        do {
            let device = try DRMDevice(path: path, kernel: kernel)
            entry.driver = device.driver
            let kms: KMSInventory
            do { kms = try KMSInventory(device: device) } catch {
                entry.reason =
                    error.errno == .EOPNOTSUPP || error.errno == .EINVAL
                    ? "no KMS: \(error.operation) \(error.errno.name) (a render-only driver)" : "\(error)"
                return entry
            }
            entry.crtcs = kms.crtcs.map(\.rawValue)
            entry.encoders = kms.encoders.map {
                .init(
                    id: $0.id.rawValue, type: $0.type.name, possibleCRTCs: $0.possibleCRTCs,
                    possibleClones: $0.possibleClones)
            }
            entry.connectors = kms.connectors.map { connector in
                .init(
                    id: connector.id.rawValue, name: "\(connector.type.name)-\(connector.typeIndex)",
                    status: connector.connection == .connected
                        ? "connected" : connector.connection == .disconnected ? "disconnected" : "unknown",
                    encoders: connector.encoders.map(\.rawValue),
                    modes: connector.modes.map {
                        .init(
                            name: $0.name, width: Int($0.hdisplay), height: Int($0.vdisplay), refresh: Int($0.vrefresh),
                            clockKHz: Int($0.clock))
                    },
                    writebackFormats: kms.writebackFormats[connector.id].map { $0.map { FourCC.name($0.rawValue) } })
            }
            entry.planes = kms.planes.map { plane in
                .init(
                    id: plane.id.rawValue, type: plane.kind?.rawValue ?? "unknown", possibleCRTCs: plane.possibleCRTCs,
                    formats: plane.formats.map { FourCC.name($0.rawValue) },
                    modifiers: plane.modifiers.isEmpty
                        ? nil
                        : Dictionary(
                            uniqueKeysWithValues: plane.modifiers.map { format, modifiers in
                                (FourCC.name(format.rawValue), modifiers.map { "0x" + String($0, radix: 16) })
                            }))
            }
            try device.close()
        } catch {
            entry.reason = "\(error)"
        }
        return entry
    }

    func videoInventory(_ path: String, name: String) -> DeviceInventory.Video {
        var entry = DeviceInventory.Video(path: path, name: name)
        do {
            let device = try V4L2Device(path: path, kernel: kernel)
            let capability = device.capability
            (entry.driver, entry.card, entry.busInfo) = (capability.driver, capability.card, capability.busInfo)
            entry.capabilities = DeviceInventory.names(capability.capabilities)
            entry.deviceCaps = DeviceInventory.names(capability.deviceCaps)
            for type in [capability.mem2memOutputType, capability.streamingType].compactMap({ $0 }) {
                var formats: [DeviceInventory.Format] = []
                for format in try device.formats(type) {
                    let sizes = (try? device.frameSizes(format)) ?? []
                    formats.append(
                        .init(
                            fourcc: FourCC.name(format.rawValue),
                            sizes: sizes.map { size in
                                switch size {
                                case .discrete(let width, let height): "\(width)x\(height)"
                                case .stepwise(let width, let widthStep, let height, let heightStep):
                                    "\(width.lowerBound)-\(width.upperBound)/\(widthStep) x \(height.lowerBound)-\(height.upperBound)/\(heightStep)"
                                }
                            }))
                }
                entry.queues.append(.init(type: DeviceInventory.typeName(type), formats: formats))
            }
            try device.close()
        } catch {
            entry.reason = "\(error)"
        }
        return entry
    }
}

extension DeviceInventory {
    /// The human form: one block per device, as drm_info and v4l2-ctl --all lay them out.
    public var text: String {
        var lines: [String] = []
        for device in drm {
            lines.append("\(device.path) (\(device.driver))" + (device.reason.map { ": \($0)" } ?? ""))
            guard device.reason == nil else { continue }
            lines.append("  CRTCs: \(device.crtcs.map(String.init).joined(separator: ", "))")
            for encoder in device.encoders {
                lines.append(
                    "  encoder \(encoder.id): \(encoder.type), possible CRTCs 0x\(String(encoder.possibleCRTCs, radix: 16)), possible clones 0x\(String(encoder.possibleClones, radix: 16))"
                )
            }
            for connector in device.connectors {
                lines.append(
                    "  connector \(connector.id) \(connector.name): \(connector.status), encoders \(connector.encoders.map(String.init).joined(separator: ", "))"
                )
                if !connector.modes.isEmpty {
                    lines.append(
                        "    modes: "
                            + connector.modes.map { "\($0.name)@\($0.refresh)" }.joined(separator: " "))
                }
                if let formats = connector.writebackFormats {
                    lines.append("    writeback formats: \(formats.joined(separator: " "))")
                }
            }
            for plane in device.planes {
                lines.append(
                    "  plane \(plane.id) \(plane.type), possible CRTCs 0x\(String(plane.possibleCRTCs, radix: 16)): \(plane.formats.joined(separator: " "))"
                )
                for (format, modifiers) in (plane.modifiers ?? [:]).sorted(by: { $0.key < $1.key })
                where modifiers != ["0x0"] {
                    lines.append("    \(format) modifiers: \(modifiers.joined(separator: " "))")
                }
            }
        }
        for node in v4l2 {
            lines.append("\(node.path) \(node.name)" + (node.reason.map { ": \($0)" } ?? ""))
            guard node.reason == nil else { continue }
            lines.append("  driver \(node.driver), card \(node.card), bus \(node.busInfo)")
            lines.append("  device caps: \(node.deviceCaps.joined(separator: ", "))")
            for queue in node.queues {
                lines.append("  \(queue.type):")
                for format in queue.formats {
                    lines.append(
                        "    \(format.fourcc): \(format.sizes.isEmpty ? "-" : format.sizes.joined(separator: " "))")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
