
extension Router {
    /// Every route of Engram's control API, answered by `control`; `version` is the VMM's version string.
    package init(control: any VMControl, version: String) {
        self.init()
        VersionEndpoint.register(in: &self, version: version)
        VMEndpoint.register(in: &self, control: control)
        SnapshotEndpoint.register(in: &self, control: control)
        MemoryStatisticsEndpoint.register(in: &self, control: control)
        UpdateEndpoint.register(in: &self, control: control)
        MigrationEndpoint.register(in: &self, control: control)
        KeyboardEndpoint.register(in: &self, control: control)
        MetricsEndpoint.register(in: &self, control: control)
        MemorySharingEndpoint.register(in: &self, control: control)
        StandbyEndpoint.registerRefusal(in: &self)
    }
}
