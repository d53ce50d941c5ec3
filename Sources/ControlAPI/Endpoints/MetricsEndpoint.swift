/// GET /metrics: what GET /vm, /vm/devices, /vm/memory/stats, /vm/migrate and /vm/update report,
/// as Prometheus text (exposition format 0.0.4), so an operator's monitoring scrapes Engram as
/// it scrapes anything else.
package enum MetricsEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.metrics) { _ in
            Response(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: Array(MetricsText.render(control).utf8))
        }
    }
}
