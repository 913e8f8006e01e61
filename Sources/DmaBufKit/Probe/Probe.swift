import DmaBufKernel
import Logging

/// One device for the probe to look at alone (`dmabuf-probe -d`).
public enum ProbeDevice: Sendable, Equatable {
    case drm(path: String, driver: String)
    case v4l2(path: String, name: String)

    public var path: String {
        switch self {
        case .drm(let path, _), .v4l2(let path, _): path
        }
    }
}

/// Finds out what a kernel can really do with dma-bufs by trying each path: heaps, udmabuf,
/// sync_file fences and DRM devices (PRIME both ways, framebuffers, scanout with writeback). Every check allocates, uses and frees its own buffers.
public struct Probe {
    public let kernel: any Kernel
    public let logger: Logger
    /// Asked between checks: a signal number ends the probe there; what was not tried is
    /// reported skipped and the report marked interrupted.
    public var stopRequest: () -> Int32? = { nil }
    static let sizes = [4096, 1 << 20]
    static let debugName = "dmabuf-probe"
    let requirementFindings = RequirementFindings()

    public init(kernel: any Kernel, logger: Logger = Logger(label: "dmabufkit.probe")) {
        self.kernel = kernel
        self.logger = logger
    }

    /// Runs every check; with `matrix`, also every exporter × importer pair. With `device`
    /// (from `select(_:)`), only that device's checks, and in the matrix only that device as
    /// importer (with every heap, udmabuf and its own buffers as exporters).
    public func run(matrix: Bool = false, device: ProbeDevice? = nil) -> ProbeReport {
        var interruption: Int32?
        func going() -> Bool {
            if interruption == nil { interruption = stopRequest() }
            return interruption == nil
        }
        func notTried<Item>(_ reason: String) -> ProbeReport.Section<Item> {
            .init(status: .skipped, reason: reason, kernelOption: nil, items: [])
        }
        func facilityNotTried(_ reason: String) -> ProbeReport.FacilityReport {
            .init(path: nil, status: .skipped, reason: reason, kernelOption: nil, facts: [:], checks: [])
        }
        let unselected = device.map { "not selected (--device \($0.path))" }
        var interrupted: String { "not tried: interrupted by \(interruption.map(StopSignals.name) ?? "a signal")" }

        let heaps = unselected.map { notTried($0) } ?? (going() ? probeHeaps() : notTried(interrupted))
        let udmabuf = unselected.map(facilityNotTried) ?? (going() ? probeUdmabuf() : facilityNotTried(interrupted))
        let working = heaps.items.filter { $0.status == .ok }.map(\.name)
        let workingHeap = working.contains("system") ? "system" : working.first
        let syncFile =
            unselected.map(facilityNotTried)
            ?? (going()
                ? probeSyncFile(heap: workingHeap, udmabufWorks: udmabuf.status == .ok) : facilityNotTried(interrupted))
        let drm: ProbeReport.Section<ProbeReport.DRMReport> =
            switch device {
            case .v4l2?: notTried(unselected!)
            case .drm(let path, _)?: going() ? probeDRM(only: path) : notTried(interrupted)
            case nil: going() ? probeDRM() : notTried(interrupted)
            }
        let v4l2: ProbeReport.Section<ProbeReport.V4L2Report> =
            switch device {
            case .drm?: notTried(unselected!)
            case .v4l2(let path, _)?: going() ? probeV4L2(only: path) : notTried(interrupted)
            case nil: going() ? probeV4L2() : notTried(interrupted)
            }
        let interfaces = device == nil && going() ? probeInterfaces() : nil
        let heapsWithFacts = device == nil && going() ? withAllocatorFacts(heaps, importers: v4l2) : heaps
        let sharing = matrix && going() ? sharingMatrix(importersOf: device, going: going) : nil
        let statuses = [heaps.status, udmabuf.status, syncFile.status, drm.status, v4l2.status, interfaces?.status]
            .compactMap { $0 }
        let exitCode: Int32 =
            interruption.map(ExitStatus.interrupted(by:))
            ?? (statuses.contains(.failed)
                ? ProbeReport.exitFailure
                : device == nil && heaps.status == .missing && udmabuf.status == .missing
                    ? ProbeReport.exitNothingPresent
                    : statuses.contains(.denied)
                        ? ProbeReport.exitPermission
                        : ProbeReport.exitOK)
        var report = ProbeReport(
            kernel: .init(
                kind: kernel.kind, release: (try? kernel.kernelRelease()) ?? "unknown", pageSize: kernel.pageSize),
            heaps: heapsWithFacts, udmabuf: udmabuf, syncFile: syncFile, drm: drm, v4l2: v4l2, matrix: sharing,
            exitCode: exitCode)
        report.interfaces = interfaces
        report.device = device?.path
        report.interruptedBy = interruption.map(StopSignals.name)
        return report
    }

    /// The device `-d` names: a path (/dev/video0, /dev/dri/card1), a number as v4l2-ctl takes
    /// it (0: /dev/video0), a V4L2 node name (vivid-000-vid-cap) or a DRM driver (vkms). An
    /// error names every device there is when nothing matches.
    public func select(_ name: String) throws(KernelError) -> ProbeDevice {
        let videoNodes = try V4L2Device.nodes(kernel: kernel)
        let cards = try DRMDevice.drivers(kernel: kernel)
        let path = Int(name).map { "/dev/video\($0)" } ?? name
        if let node = videoNodes.first(where: { $0.path == path || $0.name == name }) {
            return .v4l2(path: node.path, name: node.name)
        }
        if let card = cards.first(where: { $0.path == path || $0.driver == name }) {
            return .drm(path: card.path, driver: card.driver)
        }
        let found = videoNodes.map { "\($0.path) (\($0.name))" } + cards.map { "\($0.path) (\($0.driver))" }
        throw KernelError(
            "open", .ENOENT,
            path: path.hasPrefix("/")
                ? path : "\(KernelPaths.videoSysfsDirectory)/*/name, \(KernelPaths.drmDirectory)/card*",
            reason:
                "no V4L2 node or DRM device is \(name) (found: \(found.isEmpty ? "none" : found.joined(separator: ", ")))"
        )
    }

    // MARK: Heaps

    func probeHeaps() -> ProbeReport.Section<ProbeReport.HeapReport> {
        let names: [String]
        do { names = try DmaHeap.names(kernel: kernel) } catch {
            return .init(status: status(of: error), reason: error.description, kernelOption: nil, items: [])
        }
        guard !names.isEmpty else {
            return .init(
                status: .missing, reason: "\(KernelPaths.dmaHeapDirectory) does not exist",
                kernelOption: "CONFIG_DMABUF_HEAPS with CONFIG_DMABUF_HEAPS_SYSTEM and/or CONFIG_DMABUF_HEAPS_CMA",
                items: [])
        }
        let items = names.map(probeHeap)
        let statuses = items.map(\.status)
        let overall: ProbeStatus =
            statuses.contains(.failed) ? .failed : statuses.contains(.denied) ? .denied : .ok
        return .init(status: overall, reason: nil, kernelOption: nil, items: items)
    }

    func probeHeap(_ name: String) -> ProbeReport.HeapReport {
        let path = DmaHeap.path(of: name)
        logger.debug("probing heap", metadata: ["path": "\(path)"])
        do {
            let heap = try DmaHeap(name, kernel: kernel)
            let checks = Self.sizes.flatMap { probeAllocation(heap, size: $0) }
            return .init(name: name, path: path, status: checks.overall, checks: checks)
        } catch {
            return .init(name: name, path: path, status: status(of: error), checks: [failure("open", error)])
        }
    }

    func probeAllocation(_ heap: borrowing DmaHeap, size: Int) -> [ProbeCheck] {
        do {
            let buffer = try heap.allocate(length: size)
            var checks = [ProbeCheck(name: "allocate", size: size, status: .ok)]
            checks.append(check("zero-filled", size: size) { try expectZeroFilled(buffer) })
            checks.append(
                check("cpu-write-read", size: size) {
                    try expectWriteReadBack(buffer, seed: UInt8(truncatingIfNeeded: size >> 12))
                })
            checks.append(check("name-in-fdinfo", size: size) { try expectNameInFdinfo(buffer, exporter: heap.name) })
            do {
                try buffer.close()
                checks.append(ProbeCheck(name: "close", size: size, status: .ok))
            } catch {
                checks.append(failure("close", error, size: size))
            }
            return checks
        } catch {
            return [failure("allocate", error, size: size)]
        }
    }

    // MARK: udmabuf

    func probeUdmabuf() -> ProbeReport.FacilityReport {
        let path = KernelPaths.udmabuf
        do {
            let device = try UdmabufDevice(kernel: kernel)
            return probeUdmabuf(device)
        } catch {
            let missing = error.errno == .ENOENT
            return .init(
                path: path, status: status(of: error),
                reason: missing ? "\(path) does not exist" : error.description,
                kernelOption: missing ? KernelOption.providing(path) : nil, facts: [:],
                checks: missing ? [] : [failure("open", error)])
        }
    }

    func probeUdmabuf(_ device: borrowing UdmabufDevice) -> ProbeReport.FacilityReport {
        let path = KernelPaths.udmabuf
        var facts: [String: String] = [:]
        let limits = device.limits()
        if let size = limits.sizeLimitBytes { facts["size_limit_mb"] = String(size >> 20) }
        if let list = limits.listLimit { facts["list_limit"] = String(list) }

        var checks: [ProbeCheck] = []
        let size = 1 << 20
        checks.append(
            check("create", size: size) {
                let memfd = try Memfd(kernel: kernel, name: "dmabuf-probe", length: size)
                let buffer = try device.create(from: memfd)
                let info = try buffer.info()
                guard info.exporter == "udmabuf", info.size == UInt64(size) else {
                    throw ProbeMismatch("fdinfo says exporter \(info.exporter), size \(info.size)")
                }
                try buffer.close()
                try memfd.close()
            })
        checks.append(
            check("coherency-memfd-to-dmabuf", size: size) {
                let memfd = try Memfd(kernel: kernel, name: "dmabuf-probe", length: size)
                let buffer = try device.create(from: memfd)
                try memfd.withMapping { fill($0, seed: 0x5a) }
                try buffer.read { view in
                    if let offset = firstMismatch(view, seed: 0x5a) {
                        throw ProbeMismatch("dma-buf view differs from the memfd at byte \(offset)")
                    }
                }
            })
        checks.append(
            check("coherency-dmabuf-to-memfd", size: size) {
                let memfd = try Memfd(kernel: kernel, name: "dmabuf-probe", length: size)
                let buffer = try device.create(from: memfd)
                try buffer.write { fill($0, seed: 0xa5) }
                try memfd.withMapping { view in
                    if let offset = firstMismatch(UnsafeRawBufferPointer(view), seed: 0xa5) {
                        throw ProbeMismatch("memfd view differs from the dma-buf at byte \(offset)")
                    }
                }
            })
        checks.append(check("create-list", size: 10 * kernel.pageSize) { try expectCreateList(device) })
        return .init(path: path, status: checks.overall, reason: nil, kernelOption: nil, facts: facts, checks: checks)
    }

    /// Three ranges from two memfds must appear in order, page for page.
    func expectCreateList(_ device: borrowing UdmabufDevice) throws {
        let page = kernel.pageSize
        let first = try Memfd(kernel: kernel, name: "dmabuf-probe-a", length: 8 * page)
        let second = try Memfd(kernel: kernel, name: "dmabuf-probe-b", length: 8 * page)
        // Mark every page with its memfd (1 or 2) and index.
        try first.withMapping { view in for p in 0..<8 { view[p * page] = 0x10 | UInt8(p) } }
        try second.withMapping { view in for p in 0..<8 { view[p * page] = 0x20 | UInt8(p) } }
        let ranges = [
            first.range(offset: 2 * page, size: 4 * page), second.range(offset: 0, size: 4 * page),
            first.range(offset: 6 * page, size: 2 * page),
        ]
        let expected: [UInt8] = [0x12, 0x13, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x16, 0x17]
        let buffer = try device.create(ranges: ranges)
        guard buffer.length == 10 * page else { throw ProbeMismatch("length \(buffer.length), expected \(10 * page)") }
        try buffer.read { view in
            for (index, marker) in expected.enumerated() where view[index * page] != marker {
                throw ProbeMismatch("page \(index) holds marker \(view[index * page]), expected \(marker)")
            }
        }
    }

    // MARK: sync_file

    func probeSyncFile(heap: String?, udmabufWorks: Bool) -> ProbeReport.FacilityReport {
        var facts: [String: String] = [:]
        do {
            if let heap {
                facts["buffer"] = "heap \(heap)"
                return probeSyncFile(
                    source: try DmaHeap(heap, kernel: kernel).allocate(length: kernel.pageSize), facts: facts)
            } else if udmabufWorks {
                facts["buffer"] = "udmabuf"
                let memfd = try Memfd(kernel: kernel, name: "dmabuf-probe", length: kernel.pageSize)
                return probeSyncFile(source: try UdmabufDevice(kernel: kernel).create(from: memfd), facts: facts)
            } else {
                return .init(
                    path: nil, status: .skipped, reason: "needs a dma-buf, and no heap or udmabuf works here",
                    kernelOption: nil, facts: [:], checks: [])
            }
        } catch {
            return .init(
                path: nil, status: .failed, reason: error.description, kernelOption: nil, facts: facts, checks: [])
        }
    }

    func probeSyncFile(source: borrowing DmaBuf, facts: [String: String]) -> ProbeReport.FacilityReport {
        var checks: [ProbeCheck] = []
        let export = check("export") {
            let sync = try source.exportSyncFile(for: .write)
            guard try sync.status() == .signalled else {
                throw ProbeMismatch("an idle buffer exported an unsignalled fence")
            }
        }
        if export.errno == Errno.ENOTTY.name {
            return .init(
                path: nil, status: .missing,
                reason: "DMA_BUF_IOCTL_EXPORT_SYNC_FILE is not supported (added in Linux 6.0)",
                kernelOption: "CONFIG_SYNC_FILE on Linux 6.0 or later", facts: facts, checks: [export])
        }
        checks.append(export)
        checks.append(
            check("import") {
                let sync = try source.exportSyncFile(for: .read)
                try source.importSyncFile(sync, as: .write)
            })

        do {
            let timeline = try SoftwareTimeline(kernel: kernel)
            checks += probeFences(source: source, timeline: timeline)
        } catch {
            let missing = error.errno == .ENOENT
            checks.append(
                ProbeCheck(
                    name: "sw-sync-fences", status: missing ? .missing : status(of: error), operation: error.operation,
                    errno: error.errno.name,
                    detail: missing
                        ? "\(KernelPaths.swSync) does not exist: \(KernelOption.providing(KernelPaths.swSync))"
                        : error.description))
        }
        // sw_sync is a test aid: its absence does not make sync_file support missing.
        let overall = checks.filter { $0.status != .missing }.overall
        return .init(path: nil, status: overall, reason: nil, kernelOption: nil, facts: facts, checks: checks)
    }

    func probeFences(source: borrowing DmaBuf, timeline: borrowing SoftwareTimeline) -> [ProbeCheck] {
        var checks: [ProbeCheck] = []
        checks.append(
            check("implicit-fence-roundtrip") {
                // A pending write fence imported into the buffer must come back out, and signal.
                let fence = try timeline.fence(at: 1)
                try source.importSyncFile(fence, as: .write)
                let exported = try source.exportSyncFile(for: .read)
                guard try exported.status() == .active, try !exported.wait(timeout: .zero) else {
                    throw ProbeMismatch("the exported sync_file did not carry the pending fence")
                }
                try timeline.advance(by: 1)
                guard try exported.wait(timeout: .seconds(1)), try exported.status() == .signalled else {
                    throw ProbeMismatch("the exported fence did not signal when its timeline advanced")
                }
            })
        checks.append(
            check("merge") {
                let merged = try timeline.fence(at: 2).merged(with: try timeline.fence(at: 3), name: "dmabuf-probe")
                try timeline.advance(by: 1)
                guard try merged.status() == .active else {
                    throw ProbeMismatch("merged fence signalled before its last member")
                }
                try timeline.advance(by: 1)
                guard try merged.wait(timeout: .seconds(1)) else { throw ProbeMismatch("merged fence did not signal") }
            })
        return checks
    }

    // MARK: Checks

    func check(_ name: String, size: Int? = nil, _ body: () throws -> Void) -> ProbeCheck {
        do {
            try body()
            return ProbeCheck(name: name, size: size, status: .ok)
        } catch let error as KernelError {
            logger.debug("check failed", metadata: ["check": "\(name)", "error": "\(error)"])
            return failure(name, error, size: size)
        } catch {
            return ProbeCheck(name: name, size: size, status: .failed, detail: "\(error)")
        }
    }

    func failure(_ name: String, _ error: KernelError, size: Int? = nil) -> ProbeCheck {
        ProbeCheck(
            name: name, size: size, status: status(of: error), operation: error.operation, errno: error.errno.name,
            detail: error.description)
    }

    func status(of error: KernelError) -> ProbeStatus {
        switch error.errno {
        case .EACCES, .EPERM: .denied
        case .ENOENT: .missing
        default: .failed
        }
    }

    func expectZeroFilled(_ buffer: borrowing DmaBuf) throws {
        try buffer.read { view in
            if let offset = view.firstIndex(where: { $0 != 0 }) {
                throw ProbeMismatch("byte \(offset) of a new buffer is not zero")
            }
        }
    }

    func expectWriteReadBack(_ buffer: borrowing DmaBuf, seed: UInt8) throws {
        try buffer.write { fill($0, seed: seed) }
        try buffer.read { view in
            if let offset = firstMismatch(view, seed: seed) {
                throw ProbeMismatch("read back differs at byte \(offset)")
            }
        }
    }

    func expectNameInFdinfo(_ buffer: borrowing DmaBuf, exporter: String) throws {
        try buffer.setName(Self.debugName)
        let info = try buffer.info()
        guard info.name == Self.debugName, info.exporter == exporter, info.size == UInt64(buffer.length) else {
            throw ProbeMismatch(
                "fdinfo shows name \(info.name ?? "none"), exporter \(info.exporter), size \(info.size)")
        }
    }
}

/// A check ran but what it saw was wrong.
struct ProbeMismatch: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A position-dependent pattern, so that a shifted or repeated page does not pass.
func fill(_ view: UnsafeMutableRawBufferPointer, seed: UInt8) {
    for index in view.indices { view[index] = patternByte(index, seed: seed) }
}

func firstMismatch(_ view: UnsafeRawBufferPointer, seed: UInt8) -> Int? {
    view.indices.first { view[$0] != patternByte($0, seed: seed) }
}

@inline(__always)
func patternByte(_ index: Int, seed: UInt8) -> UInt8 {
    UInt8(truncatingIfNeeded: index &* 31 &+ index >> 12) ^ seed
}
