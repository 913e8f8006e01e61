import CLibDRM
import CLibV4L2
import DmaBufKit
import DmaBufSimulation
import Foundation
import Testing

/// What the probe must report on a kernel with both heaps, udmabuf and sw_sync: run on both kernels.
enum ProbeCases {
    @discardableResult
    static func everyPathPresentWorks(_ kernel: any Kernel) throws -> ProbeReport {
        var report: ProbeReport?
        expectNoLeaks(kernel) { report = Probe(kernel: kernel).run() }
        let found = try #require(report)
        #expect(found.exitCode == ProbeReport.exitOK, "\(found.text)")
        #expect(found.heaps.items.map(\.name) == ["reserved", "system"])
        #expect(found.heaps.items.allSatisfy { $0.status == .ok && $0.checks.count == 10 })
        // Allocator facts: CMA's buffers are contiguous at every size for the dma-contig node;
        // the system heap's at 4 KiB (one page), at 8 MiB as the allocator happened to place them.
        let cma = try #require(found.heaps.items.first { $0.name == "reserved" }?.facts)
        let system = try #require(found.heaps.items.first { $0.name == "system" }?.facts)
        #expect(cma["kind"] == "cma" && system["kind"] == "system")
        #expect(
            Int(cma["cma_total_kB"] ?? "").map { $0 > 0 } == true && Int(cma["fits_now_8MiB"] ?? "") != nil, "\(cma)")
        #expect(cma["contiguity_tried_with"]?.hasPrefix("vivid-002-") == true, "\(cma)")
        // A size below the importer's smallest frame cannot be tried (vivid's capture takes no
        // frame under 4 KiB, its S-Video output only PAL/NTSC sizes): then it says so.
        func answered(_ value: String?, _ allowed: [String]) -> Bool {
            value.map { allowed.contains($0) || $0.hasPrefix("not tried: vivid-002-") } ?? false
        }
        #expect(cma["contiguous_8MiB"] == "yes" && answered(cma["contiguous_4KiB"], ["yes"]), "\(cma)")
        #expect(answered(cma["contiguous_1MiB"], ["yes"]) && answered(system["contiguous_4KiB"], ["yes"]), "\(system)")
        #expect(["yes", "no"].contains(system["contiguous_8MiB"]), "\(system)")
        #expect(found.udmabuf.status == .ok)
        #expect(found.syncFile.status == .ok)
        #expect(found.syncFile.checks.map(\.name) == ["export", "import", "implicit-fence-roundtrip", "merge"])
        #expect(found.text.contains("Result: every dma-buf path present works."))
        #expect(found.drm.status == .ok)
        #expect(Set(found.drm.items.map(\.driver)) == ["vkms", "vgem"])
        let vkms = try #require(found.drm.items.first { $0.driver == "vkms" })
        #expect(vkms.facts["writeback"] == "true" && vkms.facts["dumb_buffer"] == "true")
        // vgem refuses to report the dumb-buffer cap (no modesetting) yet exports dumb buffers.
        let vgem = try #require(found.drm.items.first { $0.driver == "vgem" })
        #expect(vgem.facts["dumb_buffer"] == "not reported (DRM_IOCTL_GET_CAP EOPNOTSUPP)", "\(vgem.facts)")
        #expect(vgem.checks.first { $0.name == "dumb-export" }?.status == .ok)
        #expect(
            vkms.checks.map(\.name) == [
                "dumb-export", "import-system-heap", "import-udmabuf", "addfb2", "scanout-writeback",
            ])
        #expect(found.drm.items.allSatisfy { $0.checks.allSatisfy { $0.status == .ok } })
        // V4L2: vivid's nodes export and import heap buffers; udmabuf as its vmap allows
        // (refused with the reason where it has none, 6.1).
        #expect(found.v4l2.status == .ok)
        let maps = try udmabufMapsInTheKernel(kernel)
        for name in ["vivid-000-vid-cap", "vivid-000-vid-out"] {
            let node = try #require(found.v4l2.items.first { $0.name == name })
            #expect(node.checks.map(\.name) == ["expbuf", "import-system-heap", "import-udmabuf"])
            #expect(node.checks.map(\.status) == [.ok, .ok, maps ? .ok : .unsupported], "\(node.checks)")
            if !maps { #expect(node.checks.last?.requirement == "needs vmap", "\(node.checks)") }
        }
        return found
    }

    /// The node on vb2-dma-contig (vivid instance 002) as the only importer: scattered memory is
    /// refused for want of contiguity (a fact, exit 0), CMA and the node's own buffers are
    /// accepted, and every requirement the matrix states holds for a differential try of its own.
    static func contiguousImporter(_ kernel: any Kernel) throws {
        let probe = Probe(kernel: kernel)
        let device = try probe.select("vivid-002-vid-cap")
        var report: ProbeReport?
        expectNoLeaks(kernel) { report = probe.run(matrix: true, device: device) }
        let found = try #require(report)
        #expect(found.exitCode == ExitStatus.ok, "\(found.text)")
        let node = try #require(found.v4l2.items.first)
        for name in ["import-system-heap", "import-udmabuf"] {
            let check = node.checks.first { $0.name == name }
            #expect(check?.status == .unsupported && check?.requirement == "needs contiguous memory", "\(node.checks)")
            #expect(check?.errno == "EFAULT" && check?.detail?.contains("'reserved' is accepted") == true)
        }
        let matrix = try #require(found.matrix)
        let importer = "qbuf:vivid-002-vid-cap"
        #expect(matrix.cell("reserved-heap", importer)?.status == .ok, "\(matrix.text)")
        #expect(matrix.cell("expbuf:vivid-002-vid-cap", importer)?.status == .ok, "\(matrix.text)")
        for exporter in ["system-heap", "udmabuf"] {
            #expect(matrix.cell(exporter, importer)?.requirement == "needs contiguous memory", "\(matrix.text)")
        }
        #expect(matrix.text.components(separatedBy: "'reserved' is accepted").count == 2, "once:\n\(matrix.text)")
        try expectRequirementsHold(matrix, on: kernel)
    }

    /// `--advise`: a camera that needs contiguous memory and a display get the CMA heap, with
    /// the evidence and CMA's room; two vb2-vmalloc nodes and the display get the system heap.
    static func advice(_ kernel: any Kernel) throws {
        let probe = Probe(kernel: kernel)
        try expectNoLeaks(kernel) {
            let contiguous = probe.advise(
                [try probe.select("vivid-002-vid-cap"), try probe.select("vkms")], format: "XR24", width: 640,
                height: 480, count: 4)
            #expect(contiguous.exitCode == ExitStatus.ok, "\(contiguous.text)")
            #expect(contiguous.choice == "reserved-heap", "\(contiguous.text)")
            let system = try #require(contiguous.candidates.first { $0.name == "system-heap" })
            #expect(!system.acceptedByAll)
            #expect(
                system.results.first { $0.device == "vivid-002-vid-cap" }?.requirement == "needs contiguous memory",
                "\(contiguous.text)")
            #expect(contiguous.candidates.first { $0.name == "expbuf:vivid-002-vid-cap" }?.acceptedByAll == true)
            #expect((contiguous.cma?["fits"] ?? 0) >= 4 && contiguous.reason.contains("room for"), "\(contiguous.text)")
            #expect(contiguous.text.contains("Use: reserved-heap."))

            let scattered = probe.advise(
                [
                    try probe.select("vivid-000-vid-cap"), try probe.select("vivid-001-vid-out"),
                    try probe.select("vkms"),
                ],
                format: "XR24", width: 640, height: 480, count: 4)
            #expect(scattered.choice == "system-heap", "\(scattered.text)")
            #expect(scattered.reason.contains("no CMA needed"))
        }
    }

    /// Every refused cell names a requirement, and each one holds when tried again alone: a
    /// contiguous importer takes the CMA heap's buffer and not the system heap's; one that needs
    /// vmap takes the system heap's (scattered too) and not udmabuf's.
    static func expectRequirementsHold(_ matrix: SharingMatrix, on kernel: any Kernel) throws {
        let probe = Probe(kernel: kernel)
        for cell in matrix.cells where cell.status != .ok && cell.status != .skipped {
            #expect(cell.status == .unsupported && cell.requirement != nil, "no cause found: \(cell)")
            let (accepted, refused) =
                switch cell.requirement {
                case "needs contiguous memory": ("reserved-heap", "system-heap")
                case "needs vmap": ("system-heap", "udmabuf")
                default: ("", "")
                }
            guard !accepted.isEmpty else { continue }
            #expect(probe.sharingCell(accepted, cell.importer)?.status == .ok, "\(cell)")
            let again = probe.sharingCell(refused, cell.importer)
            #expect(again != nil && again?.status != .ok, "\(cell)")
        }
    }
}

@Suite("dmabuf-probe on the simulated kernel")
struct ProbeTests {
    @Test(arguments: SimulatedKernel.Version.allCases)
    func everythingWorksOnTheSimulatedKernel(_ version: SimulatedKernel.Version) throws {
        let report = try ProbeCases.everyPathPresentWorks(SimulatedKernel(version: version))
        #expect(report.kernel.kind == "simulated")
        // The model never places two system-heap chunks side by side.
        #expect(report.heaps.items.first { $0.name == "system" }?.facts?["contiguous_8MiB"] == "no")
        #expect(report.udmabuf.facts == ["size_limit_mb": "64", "list_limit": "1024"])
        #expect(
            Set(report.v4l2.items.map(\.name)) == [
                "vivid-000-vid-cap", "vivid-000-vid-out", "vivid-001-vid-cap", "vivid-001-vid-out", "vim2m",
                "vivid-002-vid-cap", "vivid-002-vid-out", "stateful-encoder", "stateful-decoder",
            ])
    }

    @Test(arguments: SimulatedKernel.Version.allCases)
    func aContiguousImporterNeedsContiguousMemory(_ version: SimulatedKernel.Version) throws {
        try ProbeCases.contiguousImporter(SimulatedKernel(version: version))
    }

    @Test(arguments: SimulatedKernel.Version.allCases)
    func theAdvisorPicksWhatEveryDeviceTakes(_ version: SimulatedKernel.Version) throws {
        try ProbeCases.advice(SimulatedKernel(version: version))
    }

    @Test(arguments: SimulatedKernel.Version.allCases)
    func everyStatedRequirementHolds(_ version: SimulatedKernel.Version) throws {
        let kernel = SimulatedKernel(version: version)
        let report = Probe(kernel: kernel).run(matrix: true)
        #expect(report.exitCode == ExitStatus.ok, "\(report.text)")
        let matrix = try #require(report.matrix)
        #expect(matrix.cells.contains { $0.requirement == "needs contiguous memory" })
        #expect(matrix.cells.contains { $0.requirement == "needs vmap" } == !version.udmabufHasVmap)
        // A mem2mem node imports on the queue it reads from too (the mem2mem pipeline's stage).
        #expect(matrix.cell("system-heap", "qbuf:vim2m:output")?.status == .ok, "\(matrix.text)")
        try ProbeCases.expectRequirementsHold(matrix, on: kernel)
    }

    @Test func aKernelWithoutDevicesSaysWhatIsMissing() {
        var configuration = SimulatedKernel.Configuration()
        configuration.heaps = []
        configuration.udmabuf = false
        configuration.drm = false
        configuration.v4l2 = false
        let report = Probe(kernel: SimulatedKernel(configuration)).run()
        #expect(report.v4l2.status == .missing)
        #expect(report.exitCode == ProbeReport.exitNothingPresent)
        #expect(report.drm.status == .missing)
        #expect(report.drm.kernelOption?.contains("CONFIG_DRM_VKMS") == true)
        #expect(report.heaps.status == .missing)
        #expect(report.heaps.kernelOption?.contains("CONFIG_DMABUF_HEAPS_SYSTEM") == true)
        #expect(report.udmabuf.status == .missing)
        #expect(report.udmabuf.kernelOption == "CONFIG_UDMABUF")
        #expect(report.syncFile.status == .skipped)
        #expect(report.text.contains("enable: CONFIG_UDMABUF"))
    }

    @Test func aForbiddenNodeIsReportedWithTheFix() {
        var configuration = SimulatedKernel.Configuration()
        configuration.deniedPaths = ["/dev/dma_heap/reserved"]
        // Without the CMA heap, why the dma-contig node refuses scattered memory is not found:
        // that node would fail the probe (exit 1) before the permission counts.
        configuration.contiguousVivid = false
        let report = Probe(kernel: SimulatedKernel(configuration)).run()
        #expect(report.exitCode == ProbeReport.exitPermission)
        let reserved = report.heaps.items.first { $0.name == "reserved" }
        #expect(reserved?.status == .denied)
        #expect(reserved?.checks.first?.errno == "EACCES")
        #expect(reserved?.checks.first?.detail?.contains("udev rule") == true)
    }

    @Test func anExhaustedCMAHeapIsAFailure() {
        var configuration = SimulatedKernel.Configuration()
        configuration.reservedHeapCapacity = 64 << 10  // 4 KiB fits, 1 MiB does not
        let report = Probe(kernel: SimulatedKernel(configuration)).run()
        #expect(report.exitCode == ProbeReport.exitFailure)
        let failed = report.heaps.items.first { $0.name == "reserved" }?.checks.filter { $0.status == .failed }
        #expect(failed?.map(\.name) == ["allocate"])
        #expect(failed?.first?.size == 1 << 20)
        #expect(failed?.first?.errno == "ENOMEM")
        #expect(report.text.contains("failed: allocate (1 MiB)"))
    }

    @Test func withoutSwSyncTheFenceChecksAreMissingNotFailed() {
        var configuration = SimulatedKernel.Configuration()
        configuration.swSync = false
        let report = Probe(kernel: SimulatedKernel(configuration)).run()
        #expect(report.exitCode == ProbeReport.exitOK)
        #expect(report.syncFile.status == .ok)
        #expect(report.syncFile.checks.last?.status == .missing)
        #expect(report.syncFile.checks.last?.detail?.contains("CONFIG_SW_SYNC") == true)
    }

    @Test func theJSONSchemaKeepsItsKeys() throws {
        let report = Probe(kernel: SimulatedKernel()).run()
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "schemaVersion", "version", "kernel", "heaps", "udmabuf", "syncFile", "drm", "v4l2", "interfaces",
                "exitCode",
            ])
        #expect(object["version"] as? String == DmaBufKitVersion.string)
        #expect(object["schemaVersion"] as? Int == 1)
        let heaps = try #require(object["heaps"] as? [String: Any])
        let first = try #require((heaps["items"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["name", "path", "status", "checks", "facts"])
        #expect(try JSONDecoder().decode(ProbeReport.self, from: data) == report)
    }
}

extension DeviceTests {
    @Suite("dmabuf-probe on the real kernel")
    struct ProbeOnDevices {
        @Test func everythingWorksOnTheRealKernel() throws {
            let kernel = LinuxKernel()
            let report = try ProbeCases.everyPathPresentWorks(kernel)
            #expect(report.kernel.kind == "linux")
            // The facts are the module's parameters as the kernel reports them.
            let limit = try kernel.readFile(KernelPaths.udmabufSizeLimit).trimmingCharacters(
                in: .whitespacesAndNewlines)
            #expect(report.udmabuf.facts["size_limit_mb"] == limit)
            let names = Set(report.v4l2.items.map(\.name))
            #expect(
                names.isSuperset(of: [
                    "vivid-000-vid-cap", "vivid-000-vid-out", "vivid-001-vid-cap", "vivid-001-vid-out", "vim2m",
                    "vivid-002-vid-cap", "vivid-002-vid-out",
                ]), "\(names)")
        }

        @Test func aContiguousImporterNeedsContiguousMemory() throws {
            try ProbeCases.contiguousImporter(LinuxKernel())
        }

        @Test func theAdvisorPicksWhatEveryDeviceTakes() throws { try ProbeCases.advice(LinuxKernel()) }

        /// The vb2-vmalloc node as the only importer: where udmabuf is refused (6.1), it is for vmap.
        @Test func aVmallocImporterStatesWhatItNeeds() throws {
            let kernel = LinuxKernel()
            let probe = Probe(kernel: kernel)
            let report = probe.run(matrix: true, device: try probe.select("vivid-000-vid-cap"))
            #expect(report.exitCode == ExitStatus.ok, "\(report.text)")
            let matrix = try #require(report.matrix)
            let udmabuf = matrix.cell("udmabuf", "qbuf:vivid-000-vid-cap")
            #expect(udmabuf?.status == (try udmabufMapsInTheKernel(kernel) ? .ok : .unsupported), "\(matrix.text)")
            try ProbeCases.expectRequirementsHold(matrix, on: kernel)
        }
    }
}

@Suite("System libraries")
struct SystemLibraryTests {
    @Test func libdrmLinksAndAnswers() {
        // drmAvailable() opens the first DRM minor: it must agree with the filesystem.
        let hasDRM = FileManager.default.fileExists(atPath: "/dev/dri/card0")
        #expect((drmAvailable() == 1) == hasDRM)
        #expect(drmGetVersion(-1) == nil)
    }

    @Test func libv4l2LinksAndRefusesABadDescriptor() {
        #expect(v4l2_fd_open(-1, 0) == -1)
    }

    @Test func libv4lconvertKnowsItsDestinationFormats() {
        func fourcc(_ code: String) -> UInt32 {
            code.utf8.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        }
        #expect(v4lconvert_supported_dst_format(fourcc("RGB3")) == 1)
        #expect(v4lconvert_supported_dst_format(fourcc("MJPG")) == 0)
    }
}

/// `dmabuf-probe -d`: one device by path, number, node name or driver; nothing else probed.
@Suite("dmabuf-probe --device on the simulated kernel")
struct ProbeSelectionTests {
    @Test func namesPathsAndNumbersSelectOneDevice() throws {
        let probe = Probe(kernel: SimulatedKernel())
        #expect(try probe.select("0") == .v4l2(path: "/dev/video0", name: "vivid-000-vid-cap"))
        #expect(try probe.select("vivid-000-vid-out") == .v4l2(path: "/dev/video1", name: "vivid-000-vid-out"))
        #expect(try probe.select("vkms") == .drm(path: "/dev/dri/card1", driver: "vkms"))
        #expect(try probe.select("/dev/dri/card0") == .drm(path: "/dev/dri/card0", driver: "vgem"))
        let missing = expectKernelError(.ENOENT) { _ = try probe.select("vivid-007-vid-cap") }
        #expect(
            missing?.reason?.contains("found: /dev/video0 (vivid-000-vid-cap)") == true,
            "\(String(describing: missing))")
    }

    /// On 6.1 udmabuf is refused by every vb2-vmalloc node for the same reason: the matrix's
    /// text prints that explanation once, numbered, and each of those cells points to it.
    @Test func eachMatrixExplanationIsPrintedOnce() throws {
        let report = Probe(kernel: SimulatedKernel(version: .linux6_1)).run(matrix: true)
        let matrix = try #require(report.matrix)
        let refused = matrix.cells.filter {
            $0.exporter == "udmabuf" && $0.importer.hasPrefix("qbuf:") && $0.requirement == "needs vmap"
        }
        #expect(refused.count >= 4 && refused.allSatisfy { $0.status == .unsupported }, "\(refused)")
        let explanation = try #require(refused.first?.explanation)
        #expect(refused.allSatisfy { $0.explanation == explanation && $0.reason?.hasSuffix(explanation) == true })
        let text = matrix.text
        #expect(text.components(separatedBy: explanation).count == 2, "printed once:\n\(text)")
        let listed = try #require(text.split(separator: "\n").first { $0.hasSuffix("] \(explanation)") })
        let mark = try #require(listed.split(separator: " ").first)  // "[n]"
        let cellLines = text.split(separator: "\n").filter {
            $0.contains("udmabuf → qbuf:") && $0.contains("needs vmap")
        }
        #expect(cellLines.count == refused.count && cellLines.allSatisfy { $0.hasSuffix(" \(mark)") }, "\(cellLines)")
    }

    @Test func onlyTheSelectedDeviceIsProbedAndImportsInTheMatrix() throws {
        let probe = Probe(kernel: SimulatedKernel())
        let report = probe.run(matrix: true, device: try probe.select("vivid-000-vid-cap"))
        #expect(report.exitCode == ExitStatus.ok, "\(report.text)")
        #expect(report.device == "/dev/video0")
        #expect(report.heaps.status == .skipped && report.drm.status == .skipped)
        #expect(report.v4l2.items.map(\.name) == ["vivid-000-vid-cap"])
        let matrix = try #require(report.matrix)
        #expect(matrix.importers == ["qbuf:vivid-000-vid-cap"])
        #expect(Set(matrix.exporters) == ["system-heap", "reserved-heap", "udmabuf", "expbuf:vivid-000-vid-cap"])
    }
}
