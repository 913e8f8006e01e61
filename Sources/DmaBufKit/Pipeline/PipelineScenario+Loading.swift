import DmaBufKernel
import Foundation
import Yams

/// Scenario files are strict: an unknown key, a value of the wrong type or out of range, or
/// settings in conflict are errors naming the file, the line and the key, found before any
/// scenario runs.
extension PipelineScenario {
    /// Reads and checks a scenario file.
    public static func load(_ path: String) throws(ConfigurationError) -> PipelineScenario {
        let text: String
        do { text = try LinuxKernel().readFile(path) } catch {
            throw ConfigurationError("scenario", path, "cannot be read: \(error.errno)")
        }
        return try parse(text, file: path)
    }

    /// Checks and decodes a scenario document; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> PipelineScenario {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigurationError("scenario", nil, "is empty", file: file)
            }
            root = node
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("scenario", nil, "is not valid YAML: \(error)", file: file)
        }
        try checkKeys(root, allowed: CodingKeys.allCases.map(\.rawValue), at: [], file: file)
        if let pipeline = root.mapping?["pipeline"] {
            try checkKeys(
                pipeline, allowed: PipelineConfiguration.CodingKeys.allCases.map(\.rawValue), at: ["pipeline"],
                file: file)
            for (number, stage) in (pipeline.mapping?["stages"]?.sequence ?? []).enumerated() {
                try checkKeys(
                    stage, allowed: PipelineGraph.Stage.CodingKeys.allCases.map(\.rawValue),
                    at: ["pipeline", "stages", "\(number)"], file: file)
            }
            if let expect = pipeline.mapping?["expect"] {
                try checkKeys(
                    expect, allowed: PipelineConfiguration.Expectations.CodingKeys.allCases.map(\.rawValue),
                    at: ["pipeline", "expect"], file: file)
            }
        }
        if let expected = root.mapping?["expect-failure"], expected.mapping != nil {
            try checkKeys(
                expected, allowed: ExpectedFailure.CodingKeys.allCases.map(\.rawValue), at: ["expect-failure"],
                file: file)
        }
        let scenario: PipelineScenario
        do {
            scenario = try YAMLDecoder().decode(PipelineScenario.self, from: root)
        } catch let error as DecodingError {
            throw describe(error, in: root, file: file)
        } catch let error as ConfigurationError {
            // A graph that does not hold together, or one beside the single-pipeline keys.
            var placed = error.at(
                file: file, line: line(of: ["pipeline", error.field], in: root) ?? line(of: ["pipeline"], in: root))
            placed.field = "pipeline.\(error.field)"
            throw placed
        } catch {
            throw ConfigurationError("scenario", nil, "cannot be read as a scenario: \(error)", file: file)
        }
        if scenario.name.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ConfigurationError(
                "name", "\"\(scenario.name)\"", "must name the scenario", file: file, line: line(of: ["name"], in: root)
            )
        }
        do { try scenario.pipeline.validate() } catch {
            let keys = ["pipeline"] + error.field.split(separator: ".").map(String.init)
            var placed = error.at(file: file, line: line(of: keys, in: root) ?? line(of: ["pipeline"], in: root))
            placed.field = "pipeline.\(error.field)"
            throw placed
        }
        return scenario
    }

    /// The name as a file name: a label, never a path (`../x` becomes `x`).
    public var fileLabel: String {
        let label = String(name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "-" }).trimmingCharacters(
            in: CharacterSet(charactersIn: ".-"))
        return label.isEmpty ? "scenario" : label
    }

    /// The scenario with a relative `file:` sink placed under `directory` (a scenario's
    /// per-run files never land in a shared fixed place).
    public func placingFiles(under directory: String) -> PipelineScenario {
        var copy = self
        let prefix = PipelineConfiguration.fileSinkPrefix
        if pipeline.sink.hasPrefix(prefix), !pipeline.sink.dropFirst(prefix.count).hasPrefix("/") {
            copy.pipeline.sink = prefix + directory + "/" + pipeline.sink.dropFirst(prefix.count)
        }
        return copy
    }

    private static func checkKeys(
        _ node: Node, allowed: [String], at path: [String], file: String
    ) throws(ConfigurationError) {
        let field = path.isEmpty ? "scenario" : path.joined(separator: ".")
        guard let mapping = node.mapping else {
            throw ConfigurationError(
                field, nil, "must be a mapping of keys to values", file: file, line: node.mark?.line)
        }
        for (key, _) in mapping {
            guard let name = key.string, allowed.contains(name) else {
                let spelled = key.string ?? "\(key)"
                throw ConfigurationError(
                    (path + [spelled]).joined(separator: "."), nil,
                    "unknown key (known here: \(allowed.joined(separator: ", ")))", file: file, line: key.mark?.line)
            }
        }
    }

    private static func node(at keys: [String], in root: Node) -> Node? {
        var node: Node? = root
        for key in keys { node = node?.mapping?[key] }
        return node
    }

    private static func line(of keys: [String], in root: Node) -> Int? { node(at: keys, in: root)?.mark?.line }

    private static func describe(_ error: DecodingError, in root: Node, file: String) -> ConfigurationError {
        let path: [CodingKey]
        let problem: String
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            (path, problem) = (context.codingPath, "must be \(kind(of: type))")
        case .keyNotFound(let key, let context):
            let field = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            return ConfigurationError(
                field, nil, "is required", file: file,
                line: line(of: context.codingPath.map(\.stringValue), in: root) ?? 1)
        case .dataCorrupted(let context):
            path = context.codingPath
            switch path.last?.stringValue {
            case "strategy":
                problem =
                    "must be one of \(PipelineConfiguration.Strategy.allCases.map(\.rawValue).joined(separator: ", "))"
            case "allocator":
                problem =
                    "must be one of \(PipelineConfiguration.Allocator.allCases.map(\.rawValue).joined(separator: ", "))"
            default: problem = "cannot be read: \(context.debugDescription)"
            }
        @unknown default:
            return ConfigurationError("scenario", nil, "\(error)", file: file)
        }
        let keys = path.map(\.stringValue)
        let value = node(at: keys, in: root)
        return ConfigurationError(
            keys.isEmpty ? "scenario" : keys.joined(separator: "."), value?.string ?? value.map { "\($0)" },
            problem, file: file, line: value?.mark?.line)
    }

    private static func kind(of type: Any.Type) -> String {
        switch type {
        case is Int.Type: "a whole number (that fits in 64 bits)"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is String.Type: "text"
        default: "a \(type)"
        }
    }
}
