import DmaBufKernel

/// Every exporter × every importer, each cell tried for real: a buffer from the exporter,
/// sized for the importer, imported (PRIME, plus AddFB2 on KMS devices) or queued (V4L2
/// DMABUF QBUF); on KMS devices a full-screen buffer is also scanned out and, with writeback,
/// compared pixel for pixel. A refusal that differential tries explain is the importer's
/// requirement (`unsupported`, "limit"), with the evidence; one they do not explain is `failed`.
public struct SharingMatrix: Codable, Sendable, Equatable {
    public var exporters: [String]
    public var importers: [String]
    public var cells: [Cell]

    public struct Cell: Codable, Sendable, Equatable {
        public var exporter: String
        public var importer: String
        public var status: ProbeStatus
        public var operation: String?
        public var errno: String?
        /// The error, and the kernel limit behind it where one is known.
        public var reason: String?
        /// The explanation part of `reason` alone (the same for every cell it applies to), so
        /// the text can print each distinct one once.
        public var explanation: String?
        /// What the importer needs that this exporter's buffers lack (`needs contiguous memory`,
        /// `needs vmap`), found by differential tries; `explanation` holds the evidence.
        public var requirement: String?
    }

    public func cell(_ exporter: String, _ importer: String) -> Cell? {
        cells.first { $0.exporter == exporter && $0.importer == importer }
    }

    /// Exporters as rows, importers as columns; then the reason of every cell that is not ok.
    public var text: String {
        guard !exporters.isEmpty, !importers.isEmpty else {
            return "sharing matrix: no exporter or no importer found\n"
        }
        let rowWidth = max(10, exporters.map(\.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(1, width - text.count))
        }
        var lines = ["sharing matrix (rows export, columns import):"]
        for (index, importer) in importers.enumerated() { lines.append("  [\(index + 1)] \(importer)") }
        lines.append(pad("", rowWidth + 3) + importers.indices.map { pad("[\($0 + 1)]", 7) }.joined())
        for exporter in exporters {
            let marks = importers.map { importer -> String in
                switch cell(exporter, importer)?.status {
                case .ok: "ok"
                case .unsupported: "limit"
                case .skipped: "-"
                case .failed: cell(exporter, importer)?.errno ?? "FAIL"
                default: "?"
                }
            }
            lines.append("  " + pad(exporter, rowWidth + 1) + marks.map { pad($0, 7) }.joined())
        }
        let notes = cells.filter { ($0.status != .ok && $0.status != .skipped) || $0.reason != nil && $0.status == .ok }
        if !notes.isEmpty { lines.append("notes:") }
        var explanations: [String] = []
        for cell in notes {
            var reason = cell.reason ?? ""
            if let explanation = cell.explanation, reason.hasSuffix(": \(explanation)") {
                let number = (explanations.firstIndex(of: explanation) ?? explanations.count) + 1
                if number > explanations.count { explanations.append(explanation) }
                reason = "\(reason.dropLast(explanation.count + 2)) [\(number)]"
            }
            lines.append("  \(cell.exporter) → \(cell.importer): \(cell.status.rawValue): \(reason)")
        }
        for (index, explanation) in explanations.enumerated() { lines.append("  [\(index + 1)] \(explanation)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Probe {
    /// A way to get a dma-buf of at least some size.
    struct MatrixExporter {
        let name: String
        let make: (Int) throws -> DmaBuf?
    }

    /// A way to use a dma-buf, with the size it needs.
    struct MatrixImporter {
        let name: String
        let size: Int
        let use: (borrowing DmaBuf) throws -> Void
        var scanout: MatrixScanout? = nil
    }

    /// A KMS device's scanout of a full-screen XRGB8888 buffer, and the same with the device's
    /// own dumb buffer as the control (tried once, when a cell's scanout fails).
    final class MatrixScanout {
        let size: Int
        let frame: String
        let show: (borrowing DmaBuf) throws -> Void
        private let control: () throws -> Void
        private(set) lazy var controlError: String? = {
            do {
                try control()
                return nil
            } catch { return "\(error)" }
        }()
        init(
            size: Int, frame: String, show: @escaping (borrowing DmaBuf) throws -> Void,
            control: @escaping () throws -> Void
        ) {
            (self.size, self.frame, self.show, self.control) = (size, frame, show, control)
        }
    }

    /// Every exporter with every importer; with `device`, that device is the only importer and
    /// the exporters are the allocators and the device itself. `going` is asked before each
    /// cell: false leaves the remaining cells skipped.
    public func sharingMatrix(importersOf device: ProbeDevice? = nil, going: () -> Bool = { true }) -> SharingMatrix {
        var exporters = matrixExporters(), importers = matrixImporters()
        if let device {
            let own: String =
                switch device {
                case .drm(_, let driver): driver
                case .v4l2(_, let name): name
                }
            importers = importers.filter { $0.name.hasSuffix(":\(own)") }
            exporters = exporters.filter { !$0.name.contains(":") || $0.name.hasSuffix(":\(own)") }
        }
        var cells: [SharingMatrix.Cell] = []
        for exporter in exporters {
            for importer in importers {
                if going() {
                    cells.append(tryCell(exporter, importer))
                } else {
                    cells.append(
                        .init(
                            exporter: exporter.name, importer: importer.name, status: .skipped,
                            reason: "not tried: interrupted"))
                }
            }
        }
        return SharingMatrix(exporters: exporters.map(\.name), importers: importers.map(\.name), cells: cells)
    }

    /// One cell of the matrix, tried alone; nil when this machine has no such exporter or
    /// importer.
    public func sharingCell(_ exporter: String, _ importer: String) -> SharingMatrix.Cell? {
        guard let made = matrixExporters().first(where: { $0.name == exporter }),
            let using = matrixImporters().first(where: { $0.name == importer })
        else { return nil }
        return tryCell(made, using)
    }

    private func tryCell(_ exporter: MatrixExporter, _ importer: MatrixImporter) -> SharingMatrix.Cell {
        var cell = SharingMatrix.Cell(exporter: exporter.name, importer: importer.name, status: .ok)
        do {
            guard let buffer = try exporter.make(importer.size) else {
                cell.status = .skipped
                cell.reason = "the exporter's buffers are smaller than the \(importer.size) bytes the importer needs"
                return cell
            }
            let used = Result { try importer.use(buffer) }
            try? buffer.close()
            if case .failure(let error) = used {
                if let error = error as? KernelError, error.operation == "VIDIOC_QBUF", error.errno == .EBADR {
                    cell.status = .skipped
                    cell.reason =
                        "not tried: this queue takes buffers only inside a media request (QBUF EBADR: a stateless decoder's OUTPUT queue), which the matrix does not build"
                    return cell
                }
                record(error, into: &cell)
                explain(&cell, importer: importer.name, size: importer.size, exporter, use: importer.use)
                return cell
            }
            if let scanout = importer.scanout { try tryScanout(scanout, exporter, into: &cell) }
        } catch {
            record(error, into: &cell)
        }
        return cell
    }

    /// A failed cell: the kernel's answer, the error's own explanation.
    private func record(_ error: any Error, into cell: inout SharingMatrix.Cell) {
        cell.status = .failed
        cell.reason = "\(error)"
        if let error = error as? KernelError {
            (cell.operation, cell.errno, cell.explanation) = (error.operation, error.errno.name, error.reason)
        }
    }

    /// A refused cell that the differential tries explain becomes the importer's requirement.
    private func explain(
        _ cell: inout SharingMatrix.Cell, importer: String, size: Int, _ exporter: MatrixExporter,
        use: (borrowing DmaBuf) throws -> Void
    ) {
        guard
            let requirement = findRequirement(
                importer: importer, size: size, refusedExporter: exporter.name, use: use)
        else { return }
        cell.status = .unsupported
        cell.requirement = requirement.kind.rawValue
        cell.explanation = requirement.evidence
        let answer = [cell.operation, cell.errno].compactMap { $0 }.joined(separator: " ")
        cell.reason = "\(answer.isEmpty ? "refused" : answer): \(requirement)"
    }

    /// The KMS part of a cell whose import worked: a full-screen buffer from the exporter,
    /// scanned out. When the device's own dumb buffer scans out, the differential tries are
    /// asked why this memory does not; when it fails too, the device's scanout is broken.
    private func tryScanout(
        _ scanout: MatrixScanout, _ exporter: MatrixExporter, into cell: inout SharingMatrix.Cell
    )
        throws
    {
        guard let buffer = try exporter.make(scanout.size) else {
            cell.reason =
                "import and AddFB2 work; scanout not tried: the exporter's buffers are smaller than a \(scanout.frame) frame"
            return
        }
        let shown = Result { try scanout.show(buffer) }
        try? buffer.close()
        guard case .failure(let error) = shown else { return }
        record(error, into: &cell)
        if let controlError = scanout.controlError {
            cell.reason =
                "import and AddFB2 work; scanning out a \(scanout.frame) frame fails: \(error); the device's own dumb buffer fails too: \(controlError)"
            return
        }
        cell.reason =
            "import and AddFB2 work, but scanning out a \(scanout.frame) frame of this exporter's memory fails while the device's own dumb buffer scans out: \(error)"
        explain(&cell, importer: "\(cell.importer) scanout", size: scanout.size, exporter, use: scanout.show)
        if cell.requirement != nil { cell.reason = "import and AddFB2 work; scanout: \(cell.reason!)" }
    }

    private func matrixExporters() -> [MatrixExporter] {
        var exporters: [MatrixExporter] = []
        for heap in (try? DmaHeap.names(kernel: kernel)) ?? [] {
            exporters.append(
                MatrixExporter(name: "\(heap)-heap") { size in
                    try DmaHeap(heap, kernel: kernel).allocate(length: size, name: Self.debugName)
                })
        }
        if (try? UdmabufDevice(kernel: kernel)) != nil {
            exporters.append(
                MatrixExporter(name: "udmabuf") { size in
                    let page = kernel.pageSize
                    let memfd = try Memfd(kernel: kernel, name: Self.debugName, length: (size + page - 1) / page * page)
                    return try UdmabufDevice(kernel: kernel).create(from: memfd)
                })
        }
        for (path, driver) in (try? DRMDevice.drivers(kernel: kernel)) ?? [] {
            exporters.append(
                MatrixExporter(name: "dumb:\(driver)") { size in
                    let device = try DRMDevice(path: path, kernel: kernel)
                    let gem = try device.createDumbBuffer(width: 1024, height: max(1, (size + 4095) / 4096))
                    let exported = try device.export(gem)
                    try gem.close()
                    try device.close()
                    return exported
                })
        }
        for node in (try? V4L2Device.nodes(kernel: kernel)) ?? [] {
            guard let (type, _) = videoNode(node.path) else { continue }
            exporters.append(
                MatrixExporter(name: "expbuf:\(node.name)") { size in
                    let device = try V4L2Device(path: node.path, kernel: kernel)
                    let queue = try V4L2Queue(device: device, type: type, memory: .mmap, count: 1)
                    let exported = try queue.export(BufferIndex(rawValue: 0))
                    try queue.release()  // vb2 orphans the exported buffer
                    try device.close()
                    if exported.length < size {
                        try exported.close()
                        return nil
                    }
                    return exported
                })
        }
        return exporters
    }

    private func matrixImporters() -> [MatrixImporter] {
        var importers: [MatrixImporter] = []
        for (path, driver) in (try? DRMDevice.drivers(kernel: kernel)) ?? [] {
            var kms = false
            if let device = try? DRMDevice(path: path, kernel: kernel) {
                kms = ((try? kernel.drmResources(device.fd).crtcs.count) ?? 0) > 0
                try? device.close()
            }
            // A 256x256 XRGB8888 framebuffer: 256 KiB.
            var importer = MatrixImporter(name: kms ? "prime+addfb2:\(driver)" : "prime:\(driver)", size: 256 * 1024) {
                [kms] buffer in
                let device = try DRMDevice(path: path, kernel: kernel)
                let gem = try device.importBuffer(buffer)
                if kms {
                    let framebuffer = try device.addFramebuffer(
                        DRMFramebufferRequest(
                            width: 256, height: 256, format: DRMFormat.xrgb8888, handles: [gem.handle],
                            pitches: [1024]))
                    try framebuffer.remove()
                }
                try gem.close()
                try device.close()
            }
            if kms, let mode = try? displayMode(path) {
                importer.scanout = MatrixScanout(
                    size: Int(mode.hdisplay) * Int(mode.vdisplay) * 4,
                    frame: "\(mode.hdisplay)x\(mode.vdisplay) XRGB8888",
                    show: { buffer in
                        let device = try DRMDevice(path: path, kernel: kernel)
                        try expectScanout(of: buffer, try DisplayPipe(device: device), device)
                        try device.close()
                    },
                    control: {
                        let device = try DRMDevice(path: path, kernel: kernel)
                        try expectWritebackMatches(try DisplayPipe(device: device), device)
                        try device.close()
                    })
            }
            importers.append(importer)
        }
        for node in (try? V4L2Device.nodes(kernel: kernel)) ?? [] {
            // A mem2mem node imports on both queues: what it reads (`:output`) and what it writes.
            for (type, sizes, suffix) in videoQueues(node.path) where sizes.count == 1 {
                importers.append(
                    MatrixImporter(name: "qbuf:\(node.name)\(suffix)", size: sizes[0]) { buffer in
                        let device = try V4L2Device(path: node.path, kernel: kernel)
                        let queued = Result { try queueOnce(device, type: type, dmaBufs: [buffer.fd], sizes: sizes) }
                        try device.close()
                        try queued.get()
                    })
            }
        }
        return importers
    }

    /// The queues of a video node an importer can use, with their plane sizes and the name
    /// suffix of the matrix column: "" for the node's streaming type, ":output" for a mem2mem
    /// node's source queue.
    private func videoQueues(_ path: String) -> [(V4L2BufferType, [Int], String)] {
        guard let device = try? V4L2Device(path: path, kernel: kernel) else { return [] }
        var queues: [(V4L2BufferType, [Int], String)] = []
        for (type, suffix) in [(device.capability.streamingType, ""), (device.capability.mem2memOutputType, ":output")]
        {
            guard let type, let format = try? device.format(type) else { continue }
            queues.append((type, format.planes.map { Int($0.sizeImage) }, suffix))
        }
        try? device.close()
        return queues
    }

    /// The mode the display pipe of a KMS device would show (of `size`, when given).
    func displayMode(_ path: String, size: (width: Int, height: Int)? = nil) throws -> DRMModeInfo {
        let device = try DRMDevice(path: path, kernel: kernel)
        let mode = Result { try DisplayPipe(device: device, size: size).mode }
        try? device.close()
        return try mode.get()
    }

    /// The buffer type a video node streams and its current plane sizes; nil for nodes
    /// without video (metadata, VBI, …).
    private func videoNode(_ path: String) -> (V4L2BufferType, [Int])? {
        guard let device = try? V4L2Device(path: path, kernel: kernel) else { return nil }
        let type = device.capability.streamingType
        let format = type.flatMap { try? device.format($0) }
        try? device.close()
        guard let type, let format else { return nil }
        return (type, format.planes.map { Int($0.sizeImage) })
    }
}
