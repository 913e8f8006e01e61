import DmaBufKernel

/// DmaBufKit's version: every tool's `--version` and every JSON report carry it.
public enum DmaBufKitVersion {
    public static let string = "0.17.0"
}
