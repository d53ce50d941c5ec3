import Foundation
import Glibc
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// A working set stored through the page server lands beside its snapshot and comes back intact;
/// one recorded against another snapshot is refused on both ends.
@Suite struct RemoteWorkingSetTests {
    let directory = TemporaryDirectory()

    @Test func storedSetComesBackAndIsKeptBesideTheSnapshot() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        #expect(try source.loadWorkingSet() == nil)

        let set = WorkingSet(
            fingerprint: chain.fingerprint,
            pages: [PageReference(region: 0, page: 1399), PageReference(region: 1, page: 0), PageReference(region: 0, page: 3)],
            recordedMilliseconds: 2500)
        try source.storeWorkingSet(set)
        #expect(try source.loadWorkingSet() == set)

        let path = WorkingSetFile.path(forSnapshot: chain.path)
        var status = stat()
        let statResult = stat(path, &status)
        #expect(statResult == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(try WorkingSetFile.read(path) == set)
        // A client connecting now is told how big the set is before asking for it.
        #expect(try server.source().manifest.workingSetPages == 3)

        // A later store replaces the set.
        let smaller = WorkingSet(fingerprint: chain.fingerprint, pages: [PageReference(region: 1, page: 255)], recordedMilliseconds: 1)
        try source.storeWorkingSet(smaller)
        #expect(try server.source().loadWorkingSet() == smaller)
    }

    @Test func setOfAnotherSnapshotIsRefusedByTheClient() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        let alien = WorkingSet(fingerprint: chain.fingerprint ^ 1, pages: [PageReference(region: 0, page: 0)], recordedMilliseconds: 1)
        let error = #expect(throws: PageSourceError.self) { try source.storeWorkingSet(alien) }
        #expect(error?.description.contains("another snapshot") == true)
        let outside = WorkingSet(fingerprint: chain.fingerprint, pages: [PageReference(region: 1, page: 256)], recordedMilliseconds: 1)
        #expect(throws: PageSourceError.self) { try source.storeWorkingSet(outside) }
        #expect(try source.loadWorkingSet() == nil)
        #expect(!FileManager.default.fileExists(atPath: WorkingSetFile.path(forSnapshot: chain.path)))
    }

    @Test func setOfAnotherSnapshotIsRefusedByTheServer() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        // Past the client's own check: a raw PUT_WORKING_SET of a set for another snapshot.
        let alien = WorkingSet(fingerprint: chain.fingerprint ^ 1, pages: [PageReference(region: 0, page: 0)], recordedMilliseconds: 1)
        let connection = try server.authenticatedConnection()
        try connection.sendFrame(.putWorkingSet, alien.encoded())
        let answer = connection.errorThenClose()
        #expect(answer.message?.contains("another snapshot") == true && answer.closed)
        // And a damaged one.
        var damaged = WorkingSet(fingerprint: chain.fingerprint, pages: [], recordedMilliseconds: 1).encoded()
        damaged[30] ^= 1
        let second = try server.authenticatedConnection()
        try second.sendFrame(.putWorkingSet, damaged)
        let refused = second.errorThenClose()
        #expect(refused.message?.contains("CRC32C") == true && refused.closed)
        #expect(try server.source().loadWorkingSet() == nil)
    }

    @Test func unusableStoredSetIsReportedNotServed() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        // A set for another snapshot left beside this one (the snapshot was rewritten, say).
        let stale = WorkingSet(fingerprint: chain.fingerprint ^ 2, pages: [PageReference(region: 0, page: 0)], recordedMilliseconds: 1)
        try WorkingSetFile.write(stale, to: WorkingSetFile.path(forSnapshot: chain.path))
        let source = try server.source()
        let error = #expect(throws: PageSourceError.self) { _ = try source.loadWorkingSet() }
        #expect(error?.description.contains("unusable") == true)
    }
}
