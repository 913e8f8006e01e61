import DmaBufKernel

/// The V4L2 part of the probe: for each capture, output or mem2mem node, its formats, then
/// EXPBUF of an MMAP buffer and DMABUF import of a system-heap buffer and of a udmabuf.
extension Probe {
    func probeV4L2(only selected: String? = nil) -> ProbeReport.Section<ProbeReport.V4L2Report> {
        let nodes: [(path: String, name: String)]
        do { nodes = try V4L2Device.nodes(kernel: kernel).filter { selected == nil || $0.path == selected } } catch {
            return .init(status: status(of: error), reason: error.description, kernelOption: nil, items: [])
        }
        let items = nodes.compactMap(probeVideoNode)
        guard !items.isEmpty else {
            return .init(
                status: .missing, reason: "no video capture, output or mem2mem node",
                kernelOption: "CONFIG_VIDEO_DEV and a driver (e.g. CONFIG_VIDEO_VIVID, CONFIG_VIDEO_VIM2M)", items: [])
        }
        let statuses = items.map(\.status)
        return .init(
            status: statuses.contains(.failed) ? .failed : statuses.contains(.denied) ? .denied : .ok, reason: nil,
            kernelOption: nil, items: items)
    }

    /// nil for nodes that carry no video (metadata, VBI, touch, …).
    func probeVideoNode(_ node: (path: String, name: String)) -> ProbeReport.V4L2Report? {
        do {
            let device = try V4L2Device(path: node.path, kernel: kernel)
            let report = probeOpenedVideoNode(device, name: node.name)
            try? device.close()
            return report
        } catch {
            return .init(
                path: node.path, name: node.name, driver: "unknown", status: status(of: error), facts: [:],
                checks: [failure("open", error)])
        }
    }

    func probeOpenedVideoNode(_ device: borrowing V4L2Device, name: String) -> ProbeReport.V4L2Report? {
        guard let type = device.capability.streamingType else { return nil }
        var facts = ["type": "\(type)"]
        var checks: [ProbeCheck] = []
        do {
            facts["formats"] = try device.formats(type).map(\.description).joined(separator: ",")
            let format = try device.format(type)
            facts["width"] = "\(format.width)"
            facts["height"] = "\(format.height)"
            facts["sizeimage"] = "\(format.planes.map(\.sizeImage).reduce(0, +))"
            let sizes = format.planes.map { Int($0.sizeImage) }
            checks.append(
                check("expbuf") {
                    let queue = try V4L2Queue(device: device, type: type, memory: .mmap, count: 1)
                    let exported = try queue.export(BufferIndex(rawValue: 0))
                    try exported.close()
                    try queue.release()
                })
            checks.append(
                explained(
                    check("import-system-heap", size: sizes.reduce(0, +)) {
                        let heap = try DmaHeap("system", kernel: kernel)
                        let buffers = try sizes.map { size throws(KernelError) in
                            try heap.allocate(length: size).release()
                        }
                        defer { for fd in buffers { try? kernel.close(fd) } }
                        try queueOnce(device, type: type, dmaBufs: buffers, sizes: sizes)
                    }, device, name: name, type: type, sizes: sizes, exporter: "system-heap"))
            checks.append(
                explained(
                    probeUdmabufImport(device, type: type, sizes: sizes), device, name: name, type: type, sizes: sizes,
                    exporter: "udmabuf"))
        } catch {
            checks.append(failure("format", error))
        }
        for index in checks.indices where checks[index].status == .missing { checks[index].status = .skipped }
        return .init(
            path: device.path, name: name, driver: device.capability.driver, status: checks.overall, facts: facts,
            checks: checks)
    }

    /// A refused import check (one plane) becomes the node's requirement when the differential
    /// tries explain it: not a failure, a fact about the device.
    func explained(
        _ check: ProbeCheck, _ device: borrowing V4L2Device, name: String, type: V4L2BufferType, sizes: [Int],
        exporter: String
    ) -> ProbeCheck {
        guard check.status == .failed || check.status == .unsupported, sizes.count == 1,
            let requirement = findRequirement(
                importer: name, size: sizes[0], refusedExporter: exporter,
                use: { buffer in try queueOnce(device, type: type, dmaBufs: [buffer.fd], sizes: sizes) })
        else { return check }
        var explained = check
        explained.status = .unsupported
        explained.requirement = requirement.kind.rawValue
        explained.detail = "\([check.operation, check.errno].compactMap { $0 }.joined(separator: " ")): \(requirement)"
        return explained
    }

    /// REQBUFS(DMABUF, 1), QBUF of the given dma-bufs, then REQBUFS(0).
    /// With `whole`, the driver is given each dma-buf's full length (and must map all of it).
    func queueOnce(
        _ device: borrowing V4L2Device, type: V4L2BufferType, dmaBufs: [FileDescriptorNumber], sizes: [Int],
        whole: [Int] = []
    ) throws {
        let queue = try V4L2Queue(device: device, type: type, memory: .dmabuf, count: 1)
        try queue.enqueue(
            BufferIndex(rawValue: 0), dmaBufs: dmaBufs, bytesUsed: type.isOutput ? sizes.map(UInt32.init) : [],
            lengths: whole.map(UInt32.init))
        try queue.release()
    }

    /// A udmabuf per plane, queued once (a refusal is explained by `explained`).
    func probeUdmabufImport(_ device: borrowing V4L2Device, type: V4L2BufferType, sizes: [Int]) -> ProbeCheck {
        let page = kernel.pageSize
        var held: [FileDescriptorNumber] = []
        defer { for fd in held { try? kernel.close(fd) } }
        do {
            let udmabuf = try UdmabufDevice(kernel: kernel)
            for size in sizes {
                let memfd = try Memfd(kernel: kernel, name: Self.debugName, length: (size + page - 1) / page * page)
                held.append(try udmabuf.create(from: memfd).release())
            }
            try queueOnce(device, type: type, dmaBufs: held, sizes: sizes)
            return ProbeCheck(name: "import-udmabuf", size: sizes.reduce(0, +), status: .ok)
        } catch let error as KernelError {
            return failure("import-udmabuf", error, size: sizes.reduce(0, +))
        } catch {
            return ProbeCheck(name: "import-udmabuf", status: .failed, detail: "\(error)")
        }
    }
}
