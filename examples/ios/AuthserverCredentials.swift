// AuthserverCredentials.swift — the Sinch iOS SDK's registration hook
// fetching credentials from authserver.
//
// When a SINClient starts for a user it has not registered yet, the SDK calls
// -[SINClientDelegate client:requiresRegistrationCredentials:] and waits for
// the callback object: -[SINClientRegistration registerWithJWT:], or
// -registerWithSignature:sequence: for the legacy scheme, or -registerDidFail:.
// Those are the Objective-C names the SDK documents; below they appear as
// Swift imports them. The application secret stays on authserver: the app
// only ever sees a credential for its own signed-in user.
//
// Who is calling: the app sends `Authorization: Bearer <identity token>`,
// the token from the app's own login (an OIDC ID token or similar), which
// authserver checks against its configured identity providers and which
// decides the Sinch user id. Never put an authserver API key (X-API-Key) in
// an app: API keys are for trusted backends, which may ask for any user.
//
// Not compiled here (no Apple toolchain); the same flow as
// ../web/authserver-credentials.js, which is tested against a real server.

import Foundation
import Sinch // the SDK's module (`#import <Sinch/Sinch.h>` in Objective-C)

/// RegistrationToken is the answer of POST /v1/registration-tokens.
struct RegistrationToken: Decodable {
    let token: String
    let applicationKey: String
    let userId: String
    let issuedAt: Date
    let expiresAt: Date
}

/// RegistrationSignature is the answer of POST /v1/registration-signatures
/// (the legacy scheme). sequence goes up by one on every call for the user.
struct RegistrationSignature: Decodable {
    let applicationKey: String
    let userId: String
    let sequence: Int64
    let signature: String
}

/// AuthserverError is a refusal or failure, from authserver's
/// application/problem+json body (RFC 9457).
struct AuthserverError: LocalizedError, Decodable {
    let status: Int
    let title: String
    let type: String?
    let detail: String?
    let requestId: String?

    var errorDescription: String? {
        "authserver: \(status) \(title)" + (detail.map { ": \($0)" } ?? "")
    }
}

/// AuthserverCredentials fetches registration credentials for the signed-in user.
final class AuthserverCredentials {
    /// Which of the two credential schemes the app's SDK registers with.
    enum Mode { case jwt, signature }

    private let baseURL: URL
    private let idToken: () async throws -> String
    private let session: URLSession

    /// - Parameters:
    ///   - baseURL: authserver's public HTTPS URL, e.g. https://auth.example.com
    ///   - idToken: the signed-in user's identity token; called on every
    ///     request, so it may refresh an expired one.
    init(baseURL: URL, session: URLSession = .shared, idToken: @escaping () async throws -> String) {
        self.baseURL = baseURL
        self.session = session
        self.idToken = idToken
    }

    /// token asks for a registration JWT for the token's own user.
    func token() async throws -> RegistrationToken {
        try await post("v1/registration-tokens")
    }

    /// signature asks for a legacy signature and the user's next sequence.
    func signature() async throws -> RegistrationSignature {
        try await post("v1/registration-signatures")
    }

    private func post<T: Decodable>(_ path: String) async throws -> T {
        var req = URLRequest(url: baseURL.appendingPathComponent(path))
        req.httpMethod = "POST"
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        req.setValue("application/json", forHTTPHeaderField: "Accept")
        req.setValue("Bearer \(try await idToken())", forHTTPHeaderField: "Authorization")
        // No userId: authserver issues for the identity token's user, and
        // answers 403 to anyone naming another user.
        req.httpBody = Data("{}".utf8)

        let (data, response) = try await session.data(for: req)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        guard (200..<300).contains(http.statusCode) else {
            throw (try? JSONDecoder().decode(AuthserverError.self, from: data))
                ?? AuthserverError(status: http.statusCode,
                                   title: HTTPURLResponse.localizedString(forStatusCode: http.statusCode),
                                   type: nil, detail: nil, requestId: http.value(forHTTPHeaderField: "X-Request-Id"))
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: data)
    }
}

/// SinchClientDelegate answers the SDK's credential request from authserver.
/// Assign it before starting the client: `sinchClient.delegate = delegate`.
final class SinchClientDelegate: NSObject, SINClientDelegate {
    private let credentials: AuthserverCredentials
    private let mode: AuthserverCredentials.Mode

    init(credentials: AuthserverCredentials, mode: AuthserverCredentials.Mode = .jwt) {
        self.credentials = credentials
        self.mode = mode
    }

    func client(_ client: SINClient, requiresRegistrationCredentials registrationCallback: SINClientRegistration) {
        // The request runs asynchronously; the answer goes back to the SDK
        // on the main actor.
        Task { @MainActor in
            do {
                switch mode {
                case .jwt:
                    let t = try await credentials.token()
                    registrationCallback.register(withJWT: t.token)
                case .signature:
                    let s = try await credentials.signature()
                    registrationCallback.register(withSignature: s.signature, sequence: s.sequence)
                }
            } catch {
                // No network, an expired login (401), ... : tell the SDK.
                registrationCallback.registerDidFail(error)
            }
        }
    }

    func clientDidStart(_ client: SINClient) {}
    // The SDK version's other SINClientDelegate methods go here as the app needs them.
}
