internal import CDmaBuf
import DmaBufKernel

/// SIGINT and SIGTERM as a request to stop a run at its next boundary (a frame, a probe
/// check, a benchmark run), so that it releases everything and reports what it did. The CLIs
/// install the handlers; the library only reads the request. A second signal ends the
/// process at once (exit 128 + its number).
public enum StopSignals {
    public static func install() { _ = cdmabuf_stop_signals_install() }

    /// The signal that asked to stop, if one did.
    public static var pending: Int32? {
        let signal = cdmabuf_stop_signal()
        return signal == 0 ? nil : signal
    }

    /// Forgets a recorded signal (tests).
    public static func clear() { cdmabuf_stop_signal_clear() }

    /// `SIGINT`, `SIGTERM`, or `signal N`.
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case 2: "SIGINT"
        case 15: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
