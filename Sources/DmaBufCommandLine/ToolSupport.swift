import ArgumentParser
import DmaBufKit
import DmaBufSimulation
import Foundation
import Logging

/// What the three tools share, so that each command is argument parsing and little else:
/// the kernel they run on, their logging, their JSON, and how a bug becomes exit 70.
public enum ToolSupport {
    /// The real kernel, or with `--simulated` the model of it, following `version`
    /// (`--simulated-version`).
    public static func kernel(simulated: Bool, version: SimulatedVersion = .linux6_1) -> any Kernel {
        simulated ? SimulatedKernel(version: version) : LinuxKernel()
    }

    /// Logs to standard error: `level` with `--verbose`, warnings otherwise.
    public static func bootstrapLogging(verbose: Bool, level: Logger.Level = .debug) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? level : .warning
            return handler
        }
    }

    /// The tools' JSON: readable, stable key order, paths unescaped.
    public static func json<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// Prints `message` to standard error.
    public static func warn(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Runs a command's body: an `ExitCode` passes through; any other error escaped the
    /// command's own handling, which makes it a bug: reported as one, exit 70. With
    /// `DMABUFKIT_INJECT_FAULT=internal-error` the body fails that way before it starts.
    public static func reportingBugs(tool: String, _ body: () throws -> Void) throws {
        do {
            if let fault = InternalError.injectedFault() { throw fault }
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            warn(InternalError.report(error, tool: tool))
            throw ExitCode(ExitStatus.internalError)
        }
    }
}

/// The kernel series the simulated kernel follows (`--simulated-version 6.1|6.12`).
public typealias SimulatedVersion = SimulatedKernel.Version

extension SimulatedKernel.Version: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
