import DmaBufKernel

/// A pipeline written as a graph (`pipeline.stages` and `pipeline.links` in a scenario): named
/// stages, each one kind of node, and links `from -> to`; a stage with two links out is a tee.
/// The graph is checked and turned into the run's topology (the same stages the single-pipeline
/// keys `source`, `sink`, `mem2mem`, `tee`, `encoder`, `decoder` make); a shape the pipeline does
/// not build is refused, naming the shapes it does.
public struct PipelineGraph: Codable, Sendable, Equatable {
    public struct Stage: Codable, Sendable, Equatable {
        public enum Kind: String, CaseIterable, Codable, Sendable {
            case capture, pattern, mem2mem, encoder, decoder, display, output, file
            var isSource: Bool { self == .capture || self == .pattern }
            var isSink: Bool { self == .display || self == .output || self == .file }
        }
        public var name: String
        public var kind: Kind
        /// The node (a name, driver or path), the file's path, or for `pattern` the picture (`bars`).
        public var node: String

        public init(name: String, kind: Kind, node: String) { (self.name, self.kind, self.node) = (name, kind, node) }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, capture, pattern, mem2mem, encoder, decoder, display, output, file
        }

        public init(from decoder: any Decoder) throws {
            let values = try decoder.container(keyedBy: CodingKeys.self)
            name = try values.decode(String.self, forKey: .name)
            let kinds = Kind.allCases.filter { values.contains(CodingKeys(rawValue: $0.rawValue)!) }
            guard kinds.count == 1, let kind = kinds.first else {
                throw ConfigurationError(
                    "stages", name,
                    "needs exactly one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")) (found \(kinds.isEmpty ? "none" : kinds.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            (self.kind, node) = (kind, try values.decode(String.self, forKey: CodingKeys(rawValue: kind.rawValue)!))
        }

        public func encode(to encoder: any Encoder) throws {
            var values = encoder.container(keyedBy: CodingKeys.self)
            try values.encode(name, forKey: .name)
            try values.encode(node, forKey: CodingKeys(rawValue: kind.rawValue)!)
        }
    }

    public var stages: [Stage]
    /// `from -> to`, by stage name.
    public var links: [String]

    public init(stages: [Stage], links: [String]) { (self.stages, self.links) = (stages, links) }

    /// The shapes the pipeline builds, as the error lists them.
    static let shapes = [
        "capture|pattern -> display", "capture|pattern -> output", "capture -> file", "capture -> mem2mem -> display",
        "capture -> encoder -> decoder -> display", "capture -> encoder -> file",
        "capture -> display plus capture -> output (a tee)",
    ]

    /// The topology into `configuration` (source, sink, mem2mem, tee, encoder, decoder).
    func configure(_ configuration: inout PipelineConfiguration) throws(ConfigurationError) {
        var byName: [String: Stage] = [:]
        for stage in stages {
            if stage.name.isEmpty { throw ConfigurationError("stages", "\"\"", "a stage needs a name") }
            if byName.updateValue(stage, forKey: stage.name) != nil {
                throw ConfigurationError("stages", stage.name, "names two stages")
            }
            if stage.node.isEmpty { throw ConfigurationError("stages", stage.name, "names no \(stage.kind.rawValue)") }
        }
        var outgoing: [String: [String]] = [:]
        var incoming: [String: [String]] = [:]
        for link in links {
            let ends = link.split(separator: "->", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard ends.count == 2, let from = byName[ends[0]], let to = byName[ends[1]] else {
                throw ConfigurationError(
                    "links", link, "must be `from -> to` between stages (\(stages.map(\.name).joined(separator: ", ")))"
                )
            }
            outgoing[from.name, default: []].append(to.name)
            incoming[to.name, default: []].append(from.name)
        }
        let sources = stages.filter { $0.kind.isSource }
        guard sources.count == 1, let source = sources.first else {
            throw ConfigurationError(
                "stages", nil, "need exactly one source (capture or pattern), found \(sources.count)")
        }
        if let unlinked = stages.first(where: { $0 != source && incoming[$0.name] == nil }) {
            throw ConfigurationError("links", unlinked.name, "no link leads to this stage")
        }
        if let joined = incoming.first(where: { $0.value.count > 1 }) {
            throw ConfigurationError("links", joined.key, "has \(joined.value.count) links in; a stage takes one")
        }
        // Each path from the source, as kinds.
        func paths(from name: String) -> [[Stage]] {
            let next = outgoing[name] ?? []
            if next.isEmpty { return [[byName[name]!]] }
            return next.flatMap { paths(from: $0).map { [byName[name]!] + $0 } }
        }
        let found = paths(from: source.name)
        let shape = found.map { $0.map(\.kind.rawValue).joined(separator: " -> ") }.joined(separator: " plus ")
        func refuse() -> ConfigurationError {
            ConfigurationError(
                "links", shape, "is not a shape the pipeline builds (\(Self.shapes.joined(separator: "; ")))")
        }
        if source.kind == .pattern && source.node != "bars" {
            throw ConfigurationError("stages", source.node, "pattern: the pattern drawn is `bars`")
        }
        configuration.source = source.kind == .pattern ? PipelineConfiguration.patternSource : source.node
        (configuration.mem2mem, configuration.tee, configuration.encoder, configuration.decoder) = (nil, nil, nil, nil)
        func sinkName(_ stage: Stage) -> String {
            stage.kind == .file ? PipelineConfiguration.fileSinkPrefix + stage.node : stage.node
        }
        if found.count == 2 {
            // A tee: the capture to a display and to an output, nothing between.
            let ends = found.map { $0.map(\.kind) }
            guard source.kind == .capture, ends.allSatisfy({ $0.count == 2 }),
                let display = found.first(where: { $0[1].kind == .display })?[1],
                let output = found.first(where: { $0[1].kind == .output })?[1]
            else { throw refuse() }
            (configuration.sink, configuration.tee) = (display.node, output.node)
            return
        }
        guard found.count == 1, let path = found.first, let sink = path.last, sink.kind.isSink else { throw refuse() }
        let middle = path.dropFirst().dropLast().map(\.kind)
        switch (source.kind, middle, sink.kind) {
        case (_, [], .display), (_, [], .output), (.capture, [], .file):
            break
        case (.capture, [.mem2mem], .display):
            configuration.mem2mem = path[1].node
        case (.capture, [.encoder, .decoder], .display):
            (configuration.encoder, configuration.decoder) = (path[1].node, path[2].node)
        case (.capture, [.encoder], .file):
            configuration.encoder = path[1].node
        default:
            throw refuse()
        }
        configuration.sink = sinkName(sink)
    }
}
