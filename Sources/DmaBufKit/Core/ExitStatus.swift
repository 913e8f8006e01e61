import DmaBufKernel
import Glibc

/// The exit codes of dmabuf-probe, dmabuf-pipe and dmabuf-bench: one table, one meaning each.
public enum ExitStatus {
    public static let ok: Int32 = 0
    /// A run, check or benchmark failed.
    public static let failed: Int32 = 1
    /// Nothing to test here: a device the command needs is absent.
    public static let nothingToTest: Int32 = 2
    /// A device node is not accessible to this user.
    public static let permission: Int32 = 3
    /// Bad arguments or input (EX_USAGE).
    public static let usage: Int32 = 64
    /// A bug in the tool (EX_SOFTWARE).
    public static let internalError: Int32 = 70

    /// Stopped by a signal: 130 for SIGINT, 143 for SIGTERM.
    public static func interrupted(by signal: Int32) -> Int32 { 128 + signal }

    /// The table every `--help` and the README show.
    public static let table = """
        Exit status (the same for dmabuf-probe, dmabuf-pipe and dmabuf-bench):
          0    everything tried worked
          1    a run, check or benchmark failed
          2    nothing to test here: a device it needs is absent (reported as skipped, with the reason)
          3    a device node is not accessible to this user
          64   bad arguments or input (a flag, a scenario file, an output that cannot be written)
          70   an internal error: a bug in the tool
          130  interrupted by SIGINT (143: SIGTERM); what ran is reported, marked interrupted
        """
}

/// An error no input explains: a bug in the tool. The CLIs exit 70 on it (and on any error
/// that is neither a kernel's nor a user's).
public struct InternalError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// The tools' own error path, provable by a test: with `DMABUFKIT_INJECT_FAULT=internal-error`
    /// in the environment a tool fails as a bug would, before it does anything.
    public static func injectedFault() -> InternalError? {
        guard let fault = getenv("DMABUFKIT_INJECT_FAULT"), String(cString: fault) == "internal-error" else {
            return nil
        }
        return InternalError("injected fault (DMABUFKIT_INJECT_FAULT=internal-error)")
    }

    /// The message a CLI prints for an error that is a bug.
    public static func report(_ error: any Error, tool: String) -> String {
        "\(tool): internal error (a bug in the tool, please report it with the command line): \(error)"
    }
}
