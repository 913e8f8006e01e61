import DmaBufCommandLine
import DmaBufKit
import Foundation

// The multi-call binary of `make dist`: one copy of the Swift runtime for the three tools,
// called through links named after them (dmabuf-probe → dmabuf) or as `dmabuf probe …`.
if let (tool, arguments) = Tool.called(CommandLine.arguments) {
    tool.main(arguments)
}
let usage = """
    usage: dmabuf probe|pipe|bench [ARGUMENTS…]
       or: dmabuf-probe, dmabuf-pipe, dmabuf-bench (links to this binary)
    Each tool explains itself with --help, e.g. `dmabuf probe --help`.

    """
switch CommandLine.arguments.dropFirst().first {
case "--help", "-h", "help":
    print(usage, terminator: "")
case "--version":
    print(DmaBufKitVersion.string)
default:
    FileHandle.standardError.write(Data(usage.utf8))
    exit(64)
}
