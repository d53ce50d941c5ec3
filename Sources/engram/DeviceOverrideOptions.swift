import ArgumentParser
import Devices
import Machine

/// `--disk`, `--net` and `--vsock` at restore and receive: host resources replacing the saved VM's.
struct DeviceOverrideOptions: ParsableArguments {
    @Option(help: "Serve the VM's disks from these files instead, in order: PATH[,readonly][,id=NAME][,bandwidth=N][,iops=N] (repeat per disk; default: the saved paths and limits).")
    var disk: [String] = []
    @Option(help: "Attach the VM's network interfaces to these taps instead, in order: tap=NAME or fd=N (repeat per interface; the MAC stays the saved one).")
    var net: [String] = []
    @Option(help: "Give the VM's vsock device this CID and socket instead: CID,PATH (a clone beside the original needs its own).")
    var vsock: String?

    func overrides() throws(DeviceError) -> DeviceOverrides {
        try DeviceOverrides(parsingDisks: disk, networks: net, vsock: vsock)
    }
}
