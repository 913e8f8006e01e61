import DmaBufKernel

/// What `dmabuf-probe` found, in the shape its `--json` output has.
///
/// The schema is stable: fields are only ever added, and `schemaVersion` goes up when one
/// changes meaning. README.md documents every field.
public struct ProbeReport: Codable, Sendable, Equatable {
    public var schemaVersion = 1
    /// The DmaBufKit version that wrote the report.
    public var version = DmaBufKitVersion.string
    /// The one device probed (`--device`), when one was chosen.
    public var device: String?
    /// The signal that ended the probe early; what it did not try is `skipped`.
    public var interruptedBy: String?
    public var kernel: KernelSection
    public var heaps: Section<HeapReport>
    public var udmabuf: FacilityReport
    public var syncFile: FacilityReport
    /// One item per DRM card node.
    public var drm: Section<DRMReport>
    /// One item per V4L2 video node (capture, output or mem2mem).
    public var v4l2: Section<V4L2Report>
    /// Interfaces newer than some kernels in use (REMOVE_BUFS, SET_DEADLINE, CLOSEFB), each
    /// tried (absent with `--device`).
    public var interfaces: Section<InterfaceReport>?
    /// Every exporter × importer, tried (absent when not asked for).
    public var matrix: SharingMatrix?
    public var exitCode: Int32
    /// Exit code, the same as the process's.
    public static let exitOK = ExitStatus.ok
    public static let exitFailure = ExitStatus.failed
    public static let exitNothingPresent = ExitStatus.nothingToTest
    public static let exitPermission = ExitStatus.permission

    public struct KernelSection: Codable, Sendable, Equatable {
        /// "linux" or "simulated".
        public var kind: String
        public var release: String
        public var pageSize: Int
    }

    public struct Section<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
        public var status: ProbeStatus
        /// Why the section is not "ok", in words; with `kernelOption` when a config option provides it.
        public var reason: String?
        public var kernelOption: String?
        public var items: [Item]
    }

    public struct HeapReport: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public var status: ProbeStatus
        public var checks: [ProbeCheck]
        /// `kind` (`cma`, `system`, `uncached`, `protected`, `unknown`: from the name); for CMA
        /// `cma_total_kB`, `cma_free_kB`, `fits_now_8MiB`; `contiguous_4KiB`, `_1MiB`, `_8MiB`
        /// (`yes`/`no` for the importer in `contiguity_tried_with`). Absent with `--device`.
        public var facts: [String: String]? = nil
    }

    public struct DRMReport: Codable, Sendable, Equatable {
        public var path: String
        public var driver: String
        public var status: ProbeStatus
        /// Capabilities: `dumb_buffer`, `prime_import`, `prime_export`, `addfb2_modifiers`, `writeback`.
        public var facts: [String: String]
        public var checks: [ProbeCheck]
    }

    public struct V4L2Report: Codable, Sendable, Equatable {
        public var path: String
        /// The node's sysfs name, e.g. `vivid-000-vid-cap`.
        public var name: String
        public var driver: String
        public var status: ProbeStatus
        /// `type` (the buffer type probed), `formats` (fourccs, comma-separated), `width`, `height`, `sizeimage`.
        public var facts: [String: String]
        public var checks: [ProbeCheck]
    }

    public struct FacilityReport: Codable, Sendable, Equatable {
        public var path: String?
        public var status: ProbeStatus
        public var reason: String?
        public var kernelOption: String?
        /// Facility-specific facts, e.g. udmabuf's `size_limit_mb` and `list_limit`.
        public var facts: [String: String]
        public var checks: [ProbeCheck]
    }
}

/// The outcome of one facility or check.
public enum ProbeStatus: String, Codable, Sendable, Equatable {
    /// Tried and worked.
    case ok
    /// Present, tried, and did not work.
    case failed
    /// Not present in this kernel.
    case missing
    /// Present but not accessible to this user.
    case denied
    /// Not tried because something it needs is missing or failed.
    case skipped
    /// Tried and refused for a known limit of this kernel or driver; `detail` names it.
    /// Not a failure: it is what this kernel can do.
    case unsupported
}

/// One thing the probe tried, with the kernel's answer when it failed.
public struct ProbeCheck: Codable, Sendable, Equatable {
    /// Stable identifier, e.g. `allocate`, `zero-filled`, `cpu-write-read`, `name-in-fdinfo`.
    public var name: String
    /// Buffer size the check used, in bytes, when it used one.
    public var size: Int?
    public var status: ProbeStatus
    /// The failing operation, e.g. `DMA_HEAP_IOCTL_ALLOC`.
    public var operation: String?
    /// The errno name, e.g. `ENOMEM`.
    public var errno: String?
    public var detail: String?
    /// What the device needs that the check's buffer lacked (`needs contiguous memory`, …),
    /// found by differential tries; then `status` is `unsupported` and `detail` has the evidence.
    public var requirement: String?

    public init(
        name: String, size: Int? = nil, status: ProbeStatus, operation: String? = nil, errno: String? = nil,
        detail: String? = nil
    ) {
        self.name = name
        self.size = size
        self.status = status
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }
}

extension Array where Element == ProbeCheck {
    /// ok when every check is ok; failed when one failed; otherwise the first non-ok status.
    var overall: ProbeStatus {
        if isEmpty { return .skipped }
        if contains(where: { $0.status == .failed }) { return .failed }
        return first { $0.status != .ok && $0.status != .unsupported }?.status ?? .ok
    }
}
