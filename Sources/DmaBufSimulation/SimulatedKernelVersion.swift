import DmaBufKernel

extension SimulatedKernel {
    /// The kernel series the model follows. Each difference between them is a property here,
    /// named for the behaviour (what the device tests found to differ on the real 6.1 and 6.12),
    /// so that the dispatch code asks about a behaviour, never about a version.
    public enum Version: String, Sendable, CaseIterable, CustomStringConvertible {
        case linux6_1 = "6.1"
        case linux6_12 = "6.12"

        public var description: String { "simulated Linux \(rawValue)" }

        /// `uname -r` of the model.
        public var release: String { "\(rawValue).0-dmabufkit-simulated" }

        /// udmabuf's dma-buf has vmap (udmabuf.c `vmap_udmabuf`, added in 6.2): importers that
        /// map buffers in the kernel — vb2-vmalloc (vivid, vim2m) and vkms's composer — take it.
        public var udmabufHasVmap: Bool { self != .linux6_1 }

        /// vivid's webcam frame intervals (vivid-vid-cap.c `webcam_intervals`): 6.12 adds 1/120.
        public var vividWebcamIntervals: [V4L2Fraction] {
            let common: [(UInt32, UInt32)] = [
                (1, 1), (1, 2), (1, 4), (1, 5), (1, 10), (2, 25), (1, 15), (1, 25), (1, 30), (1, 40), (1, 50), (1, 60),
            ]
            let all = self == .linux6_1 ? common : common + [(1, 120)]
            return all.map { V4L2Fraction($0.0, $0.1) }
        }

        /// How many of `vividWebcamIntervals` vivid offers at webcam size `sizeIndex`
        /// (0 = 320x180 … 5 = 3840x2160). 6.1: the first 2 × (6 − index)
        /// (vidioc_enum_frameintervals); 6.12: all below 720p, 12 at 720p, 9 at 1080p, 7 at 2160p
        /// (webcam_ival_count).
        public func vividIntervalCount(sizeIndex: Int, height: UInt32) -> Int {
            switch self {
            case .linux6_1: return 2 * (6 - sizeIndex)
            case .linux6_12:
                if height >= 2160 { return 7 }
                if height >= 1080 { return 9 }
                if height >= 720 { return 12 }
                return vividWebcamIntervals.count
            }
        }

        /// VIDIOC_REMOVE_BUFS and `max_num_buffers` in CREATE_BUFS (6.10); vb2 reports
        /// V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS and V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS with them.
        public var hasRemoveBuffers: Bool { self != .linux6_1 }

        /// SYNC_IOC_SET_DEADLINE on a sync_file (6.3).
        public var hasSyncFileDeadline: Bool { self != .linux6_1 }

        /// DRM_IOCTL_MODE_CLOSEFB (6.8).
        public var hasCloseFramebuffer: Bool { self != .linux6_1 }

        /// vivid names its inputs and outputs with the instance ("HDMI 000-0", 6.9's loopback
        /// across instances) rather than the count per type alone ("HDMI 0").
        public var vividConnectorNamesCarryInstance: Bool { self != .linux6_1 }

        /// vivid's loopback switch: a menu per input naming the output (of any instance) it is
        /// connected to ("HDMI 000-0 Is Connected To", 6.9), instead of 6.1's "Loop Video"
        /// control, which loops an instance's output into its own input.
        public var vividLoopsThroughConnectionMenus: Bool { self != .linux6_1 }
        /// vicodec's encoder CAPTURE (coded) format takes its size from OUTPUT's, whatever S_FMT
        /// asks (vidioc_try_fmt_vid_cap: is_enc, 6.12); on 6.1 S_FMT sets it until OUTPUT's S_FMT does.
        public var vicodecCodedSizeIsReadOnly: Bool { self != .linux6_1 }
    }

    /// A model of `version` with everything else as the default configuration.
    public convenience init(version: Version) {
        var configuration = Configuration()
        configuration.version = version
        self.init(configuration)
    }
}
