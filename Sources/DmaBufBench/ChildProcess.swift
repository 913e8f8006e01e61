import DmaBufKit

#if canImport(Glibc)
    import Glibc
#endif

/// Programs run to completion, with the CPU time each and its threads used (wait4's rusage).
struct ChildProcess {
    struct Outcome {
        /// The exit status, or 128 + the signal that ended it.
        var status: Int32
        var cpuSeconds: Double
        /// Standard output and error, interleaved.
        var output: String
        /// The child's CPU time (all threads, user + system) at each of the times asked for;
        /// fewer when it ended before.
        var cpuSamples: [Double]
        /// Of that, user space (all threads), in seconds at 1/CLK_TCK resolution.
        var userSamples: [Double]
    }

    /// Runs `arguments` (the program is looked up on PATH) with `environment` added to ours;
    /// killed after `timeout`. Reads the child's CPU clock (`clock_getcpuclockid`) at each of
    /// `sampleTimes` after its start.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], sampleTimes: [Duration] = [], timeout: Duration
    ) throws(KernelError) -> Outcome {
        try runTogether([arguments], environment: environment, sampleTimes: sampleTimes, timeout: timeout)[0]
    }

    /// Runs every command at once, as `run` runs one: each child's clock is read at the same
    /// moments, and all are killed after `timeout`.
    static func runTogether(
        _ commands: [[String]], environment: [String: String] = [:], sampleTimes: [Duration] = [], timeout: Duration
    ) throws(KernelError) -> [Outcome] {
        var children: [ChildProcess] = []
        defer { for child in children { Glibc.close(child.log) } }
        do {
            for arguments in commands { children.append(try ChildProcess(arguments, environment: environment)) }
        } catch {
            // The ones already started would outlive the measurement.
            for child in children {
                kill(child.pid, SIGKILL)
                var status: Int32 = 0
                _ = waitpid(child.pid, &status, 0)
            }
            throw error
        }
        let started = ContinuousClock.now
        var sampled = 0
        var timedOut = false
        while children.contains(where: { !$0.ended }) {
            for index in children.indices where !children[index].ended { try children[index].reap() }
            let now = ContinuousClock.now
            if sampled < sampleTimes.count && now >= started + sampleTimes[sampled] {
                for index in children.indices where !children[index].ended { children[index].sample() }
                sampled += 1
            }
            if !timedOut && now > started + timeout {
                for index in children.indices where !children[index].ended {
                    kill(children[index].pid, SIGKILL)
                    children[index].killedAfter = timeout
                }
                timedOut = true
            }
            usleep(5_000)
        }
        return children.map { $0.outcome() }
    }

    let arguments: [String]
    let pid: pid_t
    /// Standard output and error, an unlinked file.
    let log: Int32
    let cpuClock: clockid_t?
    var samples: [Double] = []
    var userSamples: [Double] = []
    var status: Int32 = 0
    var usage = rusage()
    var ended = false
    /// Set when the timeout ended it.
    var killedAfter: Duration?

    private init(_ arguments: [String], environment: [String: String]) throws(KernelError) {
        var template = Array("/tmp/dmabuf-bench-XXXXXX".utf8CString)
        let log = mkstemp(&template)
        guard log >= 0 else { throw KernelError("mkstemp", Errno(rawValue: errno), path: "/tmp") }
        unlink(&template)
        _ = fcntl(log, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)

        var variables: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                variables[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            index += 1
        }
        variables.merge(environment) { $1 }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0)=\($1)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        guard spawned == 0 else {
            Glibc.close(log)
            throw KernelError("posix_spawn", Errno(rawValue: spawned), path: arguments[0])
        }
        var cpuClock = clockid_t()
        (self.arguments, self.pid, self.log) = (arguments, pid, log)
        self.cpuClock = clock_getcpuclockid(pid, &cpuClock) == 0 ? cpuClock : nil
    }

    /// Collects the child's status if it has ended.
    mutating func reap() throws(KernelError) {
        let done = wait4(pid, &status, WNOHANG, &usage)
        if done == pid { ended = true }
        if done < 0 && errno != EINTR { throw KernelError("wait4", Errno(rawValue: errno), path: arguments[0]) }
    }

    /// Reads the child's CPU clock and its user time.
    mutating func sample() {
        var time = timespec()
        guard let cpuClock, clock_gettime(cpuClock, &time) == 0 else { return }
        samples.append(Double(time.tv_sec) + Double(time.tv_nsec) / 1e9)
        if let user = Self.userSeconds(pid) { userSamples.append(user) }
    }

    func outcome() -> Outcome {
        let signal = status & 0x7f
        let seconds = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        var output = [UInt8]()
        lseek(log, 0, SEEK_SET)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while case let count = read(log, &chunk, chunk.count), count > 0 { output += chunk[0..<count] }
        var text = String(decoding: output, as: UTF8.self)
        if let killedAfter { text += "\n(killed after \(killedAfter))" }
        return Outcome(
            status: signal == 0 ? (status >> 8) & 0xff : 128 + signal,
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime), output: text, cpuSamples: samples,
            userSamples: userSamples)
    }

    /// utime of a live process, all its threads: /proc/PID/stat's 14th field (counted after the
    /// command name, which may hold spaces and ends at the last ')').
    static func userSeconds(_ pid: pid_t) -> Double? {
        guard let stat = try? LinuxKernel().readFile("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (field 14) is fields[11].
        guard fields.count > 11, let ticks = Double(fields[11]) else { return nil }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
