import LinuxSystem
import Testing
@testable import ObjectStore

/// Endpoint, region and credentials from the AWS variables, with flags taking precedence.
@Suite struct S3ConfigurationTests {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    let token = "FwoGZXIvYXdzEXAMPLETOKEN"

    @Test func readsTheUsualVariables() throws {
        let configuration = try S3Configuration.fromEnvironment(environment: [
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token,
            "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:8333/",
        ])
        #expect(configuration.endpoint == "http://127.0.0.1:8333")
        #expect(configuration.region == "eu-west-1")
        #expect(configuration.accessKeyID == "AKIAIOSFODNN7EXAMPLE")
        #expect(configuration.secretAccessKey == secret)
        #expect(configuration.sessionToken == token)
    }

    @Test func flagsAndSpecificVariablesWin() throws {
        let environment = [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL_S3": "https://s3.example:9000", "AWS_ENDPOINT_URL": "http://other:1",
        ]
        let fromVariables = try S3Configuration.fromEnvironment(environment: environment)
        #expect(fromVariables.region == "us-west-2")
        #expect(fromVariables.endpoint == "https://s3.example:9000")
        #expect(fromVariables.sessionToken == nil)
        let fromFlags = try S3Configuration.fromEnvironment(endpoint: "http://[::1]:8333", region: "ap-south-1", environment: environment)
        #expect(fromFlags.endpoint == "http://[::1]:8333")
        #expect(fromFlags.region == "ap-south-1")
        // No endpoint anywhere: AWS itself, for the region.
        let aws = try S3Configuration.fromEnvironment(environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": secret])
        #expect(aws.endpoint == "https://s3.us-east-1.amazonaws.com" && aws.region == "us-east-1")
    }

    @Test func missingCredentialsSayWhichVariable() {
        let noKey = #expect(throws: ObjectStoreError.self) {
            _ = try S3Configuration.fromEnvironment(environment: ["AWS_SECRET_ACCESS_KEY": secret])
        }
        #expect(noKey == .credentials("AWS_ACCESS_KEY_ID is not set"))
        #expect(String(describing: noKey!).contains("AWS_ACCESS_KEY_ID is not set"))
        let noSecret = #expect(throws: ObjectStoreError.self) {
            _ = try S3Configuration.fromEnvironment(environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "  "])
        }
        #expect(noSecret == .credentials("AWS_SECRET_ACCESS_KEY is not set"))
    }

    @Test(arguments: ["ftp://host", "http://", "http://host/path", "http://host:0", "http://host:99999", "http://user@host", "host:8333"])
    func refusesEndpointsThatAreNotSchemeHostPort(endpoint: String) {
        let error = #expect(throws: ObjectStoreError.self) {
            _ = try S3Configuration.fromEnvironment(endpoint: endpoint, environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": secret])
        }
        guard case .credentials(let reason) = error else {
            Issue.record("expected a credentials error for \(endpoint), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("endpoint"))
    }

    @Test func descriptionHidesTheSecretAndToken() throws {
        let configuration = try S3Configuration.fromEnvironment(environment: [
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        ])
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in [configuration.description, String(reflecting: configuration), "\(configuration)", dumped] {
            #expect(!text.contains(secret), "\(text)")
            #expect(!text.contains(token), "\(text)")
        }
        #expect(configuration.description.contains("http://127.0.0.1:8333"))
        #expect(configuration.description.contains("AKIAIOSFODNN7EXAMPLE"))
    }
}
