import CoreMetrics

extension Counter {
    /// One counter per value of `values`, all named `label` and told apart by the label `dimension`, whose value
    /// `name` gives: a Prometheus family such as `tcptunnel_udp_dropped_total{reason="stale"}`, every member
    /// present from the start.
    static func family<Value: Hashable>(
        _ label: String, by dimension: String, of values: [Value], factory: any MetricsFactory,
        name: (Value) -> String
    ) -> [Value: Counter] {
        Dictionary(
            uniqueKeysWithValues: values.map { value in
                (value, Counter(label: label, dimensions: [(dimension, name(value))], factory: factory))
            })
    }
}
