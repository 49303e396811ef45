/// Check ids and expectations of the generic exposition rules that other modules refer to: named once here, so
/// no module matches another's text.
public enum GenericCheck {
    public static let histogramConsistent = "exposition.histogram-consistent"
    public static let counterNonNegative = "exposition.counter-non-negative"
    public static let summaryConsistent = "exposition.summary-consistent"
    public static let parsed = "exposition.parsed"

    /// The `expected` of a histogram series without a `+Inf` bucket (the exporter's expired-bucket symptom).
    public static let infBucketExpectation = "a +Inf bucket"
}
