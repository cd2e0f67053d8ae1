// AuthserverSignatures.swift — the legacy Sinch iOS SDK 3.x (Objective-C
// framework, module Sinch) registration hook answered with a signature and
// sequence from authserver.
//
// SDK 3.x headers (see examples/README.md for the references), as Swift
// imports them (the 3.x headers have no nullability annotations, hence `!`):
//   @protocol SINClientDelegate
//     @required -(void)clientDidStart:(id<SINClient>)client;
//     @required -(void)clientDidFail:(id<SINClient>)client error:(NSError *)error;
//     @optional -(void)client:(id<SINClient>)client
//               requiresRegistrationCredentials:(id<SINClientRegistration>)registrationCallback;
//   @protocol SINClientRegistration
//     -(void)registerWithSignature:(NSString *)signature sequence:(uint64_t)sequence;
//     -(void)registerDidFail:(NSError *)error;
// so registerWithSignature's sequence is a UInt64 in Swift. Every failure
// here ends in registerDidFail. Uses ../AuthserverClient.swift.

import Foundation
import Sinch

/// AuthserverSignatures answers requiresRegistrationCredentials with a
/// signature and sequence for the SINClient's own user. Each call uses up
/// one sequence number; authserver never hands one out twice.
final class AuthserverSignatures {
    private let authserver: AuthserverClient

    init(authserver: AuthserverClient) {
        self.authserver = authserver
    }

    /// Calls `registerWithSignature:sequence:` or `registerDidFail:` on the
    /// main thread. Returns at once.
    func provide(userId: String, callback: SINClientRegistration) {
        Task {
            do {
                let cred = try await authserver.post("v1/registration-signatures", body: ["userId": userId])
                // JSONSerialization gives an NSNumber; sequences are positive
                // integers below 2^53, exact in a JSON number.
                guard cred["userId"] as? String == userId,
                      let signature = cred["signature"] as? String,
                      let number = cred["sequence"] as? NSNumber, number.int64Value > 0 else {
                    throw URLError(.cannotParseResponse)
                }
                let sequence = number.uint64Value
                await MainActor.run { callback.register(withSignature: signature, sequence: sequence) }
            } catch {
                await MainActor.run { callback.registerDidFail(error) }
            }
        }
    }
}

/// The app's SINClientDelegate: both required methods and the registration
/// callback. Create the client with the id authserver names:
///
///     let userId = try await authserver.sinchUserId()
///     let client = Sinch.client(withApplicationKey: appKey,
///                               environmentHost: "clientapi.sinch.com",
///                               userId: userId)
///     client?.delegate = appDelegate   // an AppSINClientDelegate, kept alive
///     client?.start()
final class AppSINClientDelegate: NSObject, SINClientDelegate {
    private let signatures: AuthserverSignatures
    var onStarted: (() -> Void)?
    var onFailed: ((Error?) -> Void)?

    init(signatures: AuthserverSignatures) {
        self.signatures = signatures
    }

    func client(_ client: SINClient!, requiresRegistrationCredentials registrationCallback: SINClientRegistration!) {
        signatures.provide(userId: client.userId, callback: registrationCallback)
    }

    func clientDidStart(_ client: SINClient!) {
        onStarted?()
    }

    func clientDidFail(_ client: SINClient!, error: Error!) {
        onFailed?(error) // also where a registerDidFail ends up
    }
}
