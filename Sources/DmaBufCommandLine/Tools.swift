import ArgumentParser
import Foundation

/// The three tools, by the name a user calls them: each executable (and the multi-call
/// `dmabuf` of `make dist`) runs one with its own arguments.
public enum Tool: String, CaseIterable, Sendable {
    case probe = "dmabuf-probe"
    case pipe = "dmabuf-pipe"
    case bench = "dmabuf-bench"

    /// The tool a multi-call binary was asked for: by the name it was called under
    /// (`dmabuf-probe`, a link to it) or by its first argument (`dmabuf probe …`).
    public static func called(_ arguments: [String]) -> (tool: Tool, arguments: [String])? {
        guard let first = arguments.first else { return nil }
        let name = String(first.split(separator: "/").last ?? "")
        if let tool = Tool(rawValue: name) { return (tool, Array(arguments.dropFirst())) }
        if arguments.count > 1, let tool = Tool(rawValue: "dmabuf-" + arguments[1]) {
            return (tool, Array(arguments.dropFirst(2)))
        }
        return nil
    }

    /// Parses `arguments` (the process's own when nil) and runs the tool; exits the process.
    public func main(_ arguments: [String]? = nil) -> Never {
        switch self {
        case .probe: DmaBufProbeCommand.main(arguments)
        case .pipe: DmaBufPipeCommand.main(arguments)
        case .bench: DmaBufBenchCommand.main(arguments)
        }
        exit(0)
    }
}
