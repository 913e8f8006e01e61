import DmaBufKernel
import Glibc

/// A file written under a temporary name beside its target and renamed over it on `commit()`:
/// a run that fails or is interrupted never truncates or half-writes the file a user named.
final class TemporaryOutput {
    let target: String
    private let temporary: String
    private var fd: Int32
    private var committed = false

    init(beside target: String) throws {
        let slash = target.lastIndex(of: "/")
        let directory = slash.map { String(target[..<$0]) } ?? "."
        let base = slash.map { String(target[target.index(after: $0)...]) } ?? target
        guard !base.isEmpty else {
            throw OutputFileError("create", path: target, errno: .EISDIR, "the output names a directory, not a file")
        }
        var template = Array("\(directory.isEmpty ? "/" : directory)/.\(base).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        if fd < 0 {
            throw OutputFileError(
                "create", path: directory, errno: Errno(rawValue: errno),
                "cannot create the output file \(target) there")
        }
        (self.target, self.temporary, self.fd) = (
            target, String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self), fd
        )
    }

    func write(_ bytes: [UInt8]) throws {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw OutputFileError(
                    "write", path: temporary, errno: Errno(rawValue: errno), "writing the frames for \(target)")
            }
            written += count
        }
    }

    /// Renames the finished file over the target.
    func commit() throws {
        if fchmod(fd, 0o644) != 0 || rename(temporary, target) != 0 {
            throw OutputFileError(
                "rename", path: target, errno: Errno(rawValue: errno), "the frames are in \(temporary)")
        }
        committed = true
    }

    /// Closes the file; removes it unless it was committed.
    func discard() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        if !committed { unlink(temporary) }
    }

    deinit { discard() }
}
