import Devices
import Foundation
import Testing

/// `--net` as users write it, and MAC addresses as the guest and the API see them.
@Suite struct NetworkConfigurationTests {
    @Test func tapAndDescriptorFormsParse() throws {
        #expect(try NetworkConfiguration.parse("tap=tap0") == NetworkConfiguration(backend: .tap("tap0")))
        let withMAC = try NetworkConfiguration.parse("tap=vm-7,mac=52:54:00:AB:cd:01")
        #expect(withMAC.backend == .tap("vm-7") && withMAC.mac?.description == "52:54:00:ab:cd:01")
        #expect(try NetworkConfiguration.parse("mac=02:00:00:00:00:01,fd=5").backend == .descriptor(5))
    }

    @Test func badFormsAreRefusedNamingTheOption() {
        for text in ["", "tap=", "tap=0123456789abcdef", "tap=a/b", "fd=-1", "fd=x", "tap=a,fd=3", "tap=a,mac=01:00:5e:00:00:01",
                     "tap=a,mac=52:54:00:12:34", "tap=a,mac=52:54:00:12:34:5g", "tap=a,speed=10", "mac=02:00:00:00:00:01"] {
            #expect(throws: DeviceError.invalidOption(option: "--net", value: text, expected: NetworkConfiguration.syntax), "\(text)") {
                try NetworkConfiguration.parse(text)
            }
        }
    }

    @Test func randomAddressesAreLocallyAdministeredUnicast() {
        let addresses = (0..<64).map { _ in MACAddress.random() }
        #expect(addresses.allSatisfy { $0.bytes[0] & 0x03 == 0x02 })
        #expect(Set(addresses).count > 60)
    }

    @Test func configurationsRoundTripAsJSON() throws {
        for configuration in [NetworkConfiguration(backend: .tap("t0"), mac: MACAddress("02:11:22:33:44:55")),
                              NetworkConfiguration(backend: .descriptor(9))] {
            let json = try JSONEncoder().encode(configuration)
            #expect(try JSONDecoder().decode(NetworkConfiguration.self, from: json) == configuration)
        }
        #expect(String(decoding: try JSONEncoder().encode(NetworkConfiguration(backend: .tap("t0"))), as: UTF8.self) == #"{"tap":"t0"}"#)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MACAddress.self, from: Data(#""52:54""#.utf8)) }
    }
}
