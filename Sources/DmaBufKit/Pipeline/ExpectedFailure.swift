import DmaBufKernel
import Foundation
import Logging

/// `expect-failure` of a scenario: the words a failing run's reason must contain, and, where
/// the failure depends on what the kernel can do, the sharing it depends on. The short form is
/// the words alone (`expect-failure: blank`); the long form:
///
///     expect-failure:
///       reason: vmap
///       unless-shares: udmabuf to qbuf:vivid-000-vid-cap
///
/// tries that cell of `dmabuf-probe --matrix` (exporter `to` importer, named as in the matrix)
/// before the run: where the cell works, the scenario must pass like any other; where it does
/// not, the run must fail for the reason given. So one file holds both kernels' truth, and
/// what decides between them is a try, never the kernel's release.
public struct ExpectedFailure: Codable, Sendable, Equatable {
    public var reason: String
    public var unlessShares: SharingPair?

    public struct SharingPair: Codable, Sendable, Equatable, CustomStringConvertible {
        public var exporter: String
        public var importer: String
        public var description: String { "\(exporter) to \(importer)" }

        public init(exporter: String, importer: String) { (self.exporter, self.importer) = (exporter, importer) }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            let parts = text.components(separatedBy: " to ")
            guard parts.count == 2, let exporter = parts.first?.trimmed, let importer = parts.last?.trimmed,
                !exporter.isEmpty, !importer.isEmpty
            else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath,
                        debugDescription:
                            "\"\(text)\" is not a matrix cell: write EXPORTER to IMPORTER, e.g. udmabuf to qbuf:vivid-000-vid-cap"
                    ))
            }
            (self.exporter, self.importer) = (exporter, importer)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case reason, unlessShares = "unless-shares"
    }

    public init(reason: String, unlessShares: SharingPair? = nil) {
        (self.reason, self.unlessShares) = (reason, unlessShares)
    }

    public init(from decoder: any Decoder) throws {
        if let words = try? decoder.singleValueContainer().decode(String.self) {
            self.init(reason: words)
            return
        }
        let values = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            reason: try values.decode(String.self, forKey: .reason),
            unlessShares: try values.decodeIfPresent(SharingPair.self, forKey: .unlessShares))
    }

    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(reason, forKey: .reason)
        try values.encodeIfPresent(unlessShares, forKey: .unlessShares)
    }

    /// Whether the run must fail on this kernel: always, or, with `unless-shares`, when that
    /// cell, tried now, does not work. Returns the cell's outcome for the report.
    func applies(kernel: any Kernel, logger: Logger) -> (applies: Bool, evidence: String?) {
        guard let pair = unlessShares else { return (true, nil) }
        let cell = Probe(kernel: kernel, logger: logger).sharingCell(pair.exporter, pair.importer)
        guard let cell else {
            return (true, "\(pair) is not a cell of this machine's sharing matrix (no such exporter or importer)")
        }
        let how = [cell.operation, cell.errno].compactMap { $0 }.joined(separator: " ")
        let outcome = "tried \(pair): \(cell.status.rawValue)\(how.isEmpty ? "" : ", \(how)")"
        return (cell.status != .ok, outcome)
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespaces) }
}
