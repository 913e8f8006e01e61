import DmaBufKernel

/// The least, middle and greatest of repeated measurements: what a single figure would hide.
public struct Spread: Codable, Sendable, Hashable {
    public var minimum: Double, median: Double, maximum: Double

    /// nil for no values; the median of an even count is the upper of the middle two.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        (minimum, median, maximum) = (sorted[0], sorted[sorted.count / 2], sorted[sorted.count - 1])
    }

    public init(minimum: Double, median: Double, maximum: Double) {
        (self.minimum, self.median, self.maximum) = (minimum, median, maximum)
    }
}
