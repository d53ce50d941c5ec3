/// Memory sharing: the balloon, as Firecracker's API shapes it (GET and PUT /vm/balloon, the target;
/// GET and PATCH /vm/balloon/statistics, the guest's report and how often it is asked for), and
/// PUT /vm/fork and PUT /vm/fork/reserve.
package enum MemorySharingEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.balloon) { _ in try .json(control.balloon()) }
        router.add(.balloonUpdate) { body in try .json(control.setBalloon(body.decode(BalloonUpdate.self))) }
        router.add(.balloonStatistics) { _ in try .json(control.balloonStatistics()) }
        router.add(.balloonStatisticsUpdate) { body in try .json(control.setBalloonStatistics(body.decode(BalloonStatisticsUpdate.self))) }
        router.add(.fork) { body in try .json(control.fork(body.decode(ForkRequest.self))) }
        router.add(.forkReserve) { body in try .json(control.reserveFork(body.decode(ForkReserveRequest.self))) }
    }
}
