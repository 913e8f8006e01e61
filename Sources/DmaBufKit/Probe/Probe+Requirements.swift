import DmaBufKernel

/// What an importer needs of the memory it is given, found by trying it with buffers that
/// differ in one property: a device's requirement, not a failure.
public struct ImporterRequirement: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// vb2-dma-contig, GEM DMA helpers: the buffer must be one physically contiguous run
        /// (or the device's IOMMU must make it look like one).
        case contiguousMemory = "needs contiguous memory"
        /// vb2-vmalloc, vkms: the importer maps the buffer into the kernel with the exporter's vmap.
        case vmap = "needs vmap"
    }

    public var kind: Kind
    /// The tries that show it, in words.
    public var evidence: String

    public var description: String { "\(kind.rawValue): \(evidence)" }
}

/// What a dma-buf heap allocates, from its name: names vary across kernels and vendors
/// (`reserved` and `linux,cma`, `default_cma_region` from 6.17, `*-uncached`, `protected,*`).
/// Nothing assumes that any one exists.
public enum HeapKind: String, Codable, Sendable {
    /// A CMA area: physically contiguous buffers.
    case cma
    /// Pages from the buddy allocator, scattered (largest chunks first).
    case system
    /// System memory mapped uncached (vendor heaps).
    case uncached
    /// Memory the CPU cannot access (secure video paths).
    case protected
    case unknown

    public init(heapName name: String) {
        if name.hasPrefix("protected,") || name.hasPrefix("secure") {
            self = .protected
        } else if name.hasSuffix("uncached") {
            self = .uncached
        } else if name == "system" {
            self = .system
        } else if ["reserved", "linux,cma", "default_cma_region"].contains(name) || name.hasSuffix("cma") {
            self = .cma
        } else {
            self = .unknown
        }
    }
}

/// The differential tries behind refusals, remembered per importer: each is a few allocations
/// and imports, and a matrix row asks the same question of the same importer many times.
final class RequirementFindings {
    var found: [String: ImporterRequirement?] = [:]
}

extension Probe {
    /// Why `importer` refused a `size`-byte buffer from `exporter`, by differential tries with
    /// `use`: the same size from a CMA heap (contiguous) and from the system heap (scattered);
    /// when the contiguous one alone is accepted, also a system-heap buffer of one 1 MiB chunk
    /// (the largest the system heap allocates; page << 8) where the importer takes that size. A
    /// scattered exporter refused while system-heap buffers, scattered too, are accepted lacks
    /// the one thing the importer needs that they have: vmap. nil when no try explains it.
    func findRequirement(
        importer: String, size: Int, refusedExporter exporter: String, use: (borrowing DmaBuf) throws -> Void
    ) -> ImporterRequirement? {
        let key = "\(importer)\u{0}\(size)\u{0}\(exporter == "udmabuf")"
        if let known = requirementFindings.found[key] { return known }
        let found = differentialTries(importer: importer, size: size, exporter: exporter, use: use)
        requirementFindings.found[key] = found
        if let found { logger.debug("\(importer): \(found)") }
        return found
    }

    private func differentialTries(
        importer: String, size: Int, exporter: String, use: (borrowing DmaBuf) throws -> Void
    ) -> ImporterRequirement? {
        let heaps = (try? DmaHeap.names(kernel: kernel)) ?? []
        guard let scattered = heaps.first(where: { HeapKind(heapName: $0) == .system }) else { return nil }
        func attempt(_ heap: String, _ bytes: Int) -> Result<Void, any Error> {
            Result {
                let buffer = try DmaHeap(heap, kernel: kernel).allocate(length: bytes, name: Self.debugName)
                let used = Result { try use(buffer) }
                try buffer.close()
                try used.get()
            }
        }
        // No sizes in the evidence: the text is the same for every importer it applies to.
        switch attempt(scattered, size) {
        case .failure(let refusal):
            guard let contiguous = heaps.first(where: { HeapKind(heapName: $0) == .cma }),
                case .success = attempt(contiguous, size)
            else { return nil }
            var evidence =
                "a buffer from the CMA heap '\(contiguous)' is accepted, the same size from the '\(scattered)' heap (scattered chunks) is refused (\(Self.briefly(refusal)))"
            let chunk = kernel.pageSize << 8
            if size <= chunk {
                switch attempt(scattered, chunk) {
                case .success: evidence += "; a '\(scattered)' buffer of one \(chunk >> 20) MiB chunk is accepted"
                case .failure:
                    evidence += "; a \(chunk >> 20) MiB '\(scattered)' buffer (one chunk where free) is refused too"
                }
            }
            return ImporterRequirement(kind: .contiguousMemory, evidence: evidence)
        case .success:
            guard exporter == "udmabuf" else { return nil }
            return ImporterRequirement(
                kind: .vmap,
                evidence:
                    "'\(scattered)'-heap buffers of the same size, scattered like udmabuf's, are accepted while udmabuf's are refused: the importer maps buffers into the kernel (vmap), which these udmabuf dma-bufs lack (udmabuf has vmap from Linux 6.2)"
            )
        }
    }

    /// An error as "OPERATION ERRNO", or its text.
    static func briefly(_ error: any Error) -> String {
        if let error = error as? KernelError { return "\(error.operation) \(error.errno.name)" }
        return "\(error)"
    }
}
