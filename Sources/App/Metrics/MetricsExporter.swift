import Crypto
import Glibc
import Mux
import Prometheus

/// The agent's metrics in Prometheus' text format, each family with `# HELP` and `# TYPE`, with what is measured
/// rather than counted (threads, the process's CPU, memory and descriptors) brought up to date first; also as
/// one log line for SIGUSR1.
final class MetricsExporter: Sendable {
    /// What the agent counts into.
    let metrics: AgentMetrics
    private let registry: PrometheusCollectorRegistry
    private let threads: Gauge
    private let process: ProcessMetrics
    private let reloadsApplied: Prometheus.Counter
    private let reloadsFailed: Prometheus.Counter
    private let lastReloadSuccessful: Gauge
    private let lastReloadSuccessTime: Gauge

    init() {
        registry = PrometheusCollectorRegistry()
        metrics = AgentMetrics(factory: DescribedMetricsFactory(registry: registry))
        threads = registry.makeGauge(descriptor: MetricFamily.threads.descriptor)
        registry.makeGauge(
            descriptor: MetricFamily.buildInfo.descriptor,
            labels: [("version", TCPTunnel.version), ("protocol", "\(HandshakeMessage.protocolVersion)")]
        ).set(1.0)
        process = ProcessMetrics(registry: registry)
        reloadsApplied = registry.makeCounter(
            descriptor: MetricFamily.reloads.descriptor, labels: [("result", "applied")])
        reloadsFailed = registry.makeCounter(
            descriptor: MetricFamily.reloads.descriptor, labels: [("result", "failed")])
        lastReloadSuccessful = registry.makeGauge(descriptor: MetricFamily.lastReloadSuccessful.descriptor)
        lastReloadSuccessTime = registry.makeGauge(descriptor: MetricFamily.lastReloadSuccessTime.descriptor)
        lastReloadSuccessful.set(1.0)
        lastReloadSuccessTime.set(Double(time(nil)))
    }

    /// Counts a reload (SIGHUP): applied, or refused with the running configuration kept.
    func recordReload(applied: Bool) {
        (applied ? reloadsApplied : reloadsFailed).increment()
        lastReloadSuccessful.set(applied ? 1.0 : 0.0)
        if applied { lastReloadSuccessTime.set(Double(time(nil))) }
    }

    /// The text exposition, as served at /metrics.
    func exposition() -> [UInt8] {
        if let count = SystemFile.statusNumber("Threads") { threads.set(Double(count)) }
        process.update()
        return registry.emitToBuffer()
    }

    /// Every sample but histograms' buckets on one line, sorted by name, without the `tcptunnel_` prefix, whole
    /// numbers without a fraction: `connections_rejected_total{reason="closed_without_data"}=0 … links_up=1 …
    /// threads=7`.
    func summary() -> String {
        String(decoding: exposition(), as: UTF8.self).split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.contains("_bucket{") }
            .map { line in
                let sample = line.hasPrefix("tcptunnel_") ? line.dropFirst("tcptunnel_".count) : line[...]
                guard let space = sample.lastIndex(of: " ") else { return String(sample) }
                var value = String(sample[sample.index(after: space)...])
                if value.hasSuffix(".0") { value.removeLast(2) }
                return "\(sample[..<space])=\(value)"
            }
            .sorted()
            .joined(separator: " ")
    }
}
