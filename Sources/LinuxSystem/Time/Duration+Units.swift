extension Duration {
    /// The duration in seconds, as a fraction: for figures in answers and summaries.
    package var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in milliseconds, as a fraction.
    package var inMilliseconds: Double { inSeconds * 1000 }
}
