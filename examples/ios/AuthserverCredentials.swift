// AuthserverCredentials.swift — the Sinch iOS SDK 5.x (Swift SDK, module
// SinchRTC) registration hook answered with a JWT from authserver.
//
// SDK (see examples/README.md for the references):
//   SinchRTC.client(withApplicationKey:environmentHost:userId:) throws -> SinchClient
//   protocol SinchClientDelegate {
//     func clientRequiresRegistrationCredentials(_ client: SinchClient,
//                                                withCallback callback: SinchClientRegistration)
//     func clientDidStart(_ client: SinchClient)
//     func clientDidFail(_ client: SinchClient, error: Error)
//   }
//   SinchClientRegistration.register(withJWT:) / .registerDidFail(error:)
// The SDK waits for register or registerDidFail: every failure here (network,
// timeout, refusal, a JWT for another user) ends in registerDidFail.
// Uses AuthserverClient.swift.

import Foundation
import SinchRTC

/// AuthserverRegistration answers clientRequiresRegistrationCredentials with
/// a registration JWT for the SinchClient's own user.
final class AuthserverRegistration {
    private let authserver: AuthserverClient

    init(authserver: AuthserverClient) {
        self.authserver = authserver
    }

    /// Fetches a JWT for `userId` (the SinchClient's userId) and calls
    /// `callback.register(withJWT:)`, or `callback.registerDidFail(error:)`
    /// on any failure, on the main thread. Returns at once.
    func provide(userId: String, callback: SinchClientRegistration) {
        Task {
            do {
                // Naming the user makes authserver refuse (403) rather than
                // issue for someone else; the answer is checked as well.
                let cred = try await authserver.post("v1/registration-tokens", body: ["userId": userId])
                guard cred["userId"] as? String == userId, let jwt = cred["token"] as? String else {
                    throw URLError(.cannotParseResponse)
                }
                await MainActor.run { callback.register(withJWT: jwt) }
            } catch {
                await MainActor.run { callback.registerDidFail(error: error) }
            }
        }
    }
}

/// The app's SinchClientDelegate (its own name: SinchClientDelegate is the
/// SDK's protocol). Create the client with the id authserver names:
///
///     let userId = try await authserver.sinchUserId()
///     let client = try SinchRTC.client(withApplicationKey: appKey,
///                                      environmentHost: "ocra.api.sinch.com",
///                                      userId: userId)
///     client.delegate = appDelegate   // an AppSinchClientDelegate, kept alive
///     client.start()
final class AppSinchClientDelegate: NSObject, SinchClientDelegate {
    private let registration: AuthserverRegistration
    var onStarted: (() -> Void)?
    var onFailed: ((Error) -> Void)?

    init(registration: AuthserverRegistration) {
        self.registration = registration
    }

    func clientRequiresRegistrationCredentials(_ client: SinchClient, withCallback callback: SinchClientRegistration) {
        registration.provide(userId: client.userId, callback: callback)
    }

    func clientDidStart(_ client: SinchClient) {
        onStarted?()
    }

    func clientDidFail(_ client: SinchClient, error: Error) {
        onFailed?(error) // also where a registerDidFail ends up
    }
}
