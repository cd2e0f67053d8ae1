// AuthserverClient.swift — the HTTP part shared by the iOS examples: one POST
// to authserver with the signed-in user's identity token, over TLS only, with
// request and resource timeouts, answering JSON or throwing.
//
// Foundation only (URLSession, JSONSerialization, Swift concurrency).

import Foundation

/// A refusal or failure, from authserver's application/problem+json body
/// (RFC 9457). `retryAfterSeconds` is set on 429 and 503.
struct AuthserverError: Error, CustomStringConvertible {
    let status: Int
    let title: String?
    let detail: String?
    let requestId: String?
    let retryAfterSeconds: Int?

    var description: String { "authserver: \(status) \(title ?? "")\(detail.map { ": \($0)" } ?? "")" }
}

/// AuthserverClient calls authserver's credential endpoints for the
/// signed-in user. `idToken` returns the user's current identity token from
/// the app's login (an OIDC ID token or similar) and may refresh it. Never
/// send an authserver API key from an app: API keys are for trusted backends,
/// which may ask for any user.
final class AuthserverClient {
    private let baseURL: URL
    private let idToken: () async throws -> String
    private let session: URLSession

    /// Fails (returns nil) unless `baseURL` is https: the identity token and
    /// the credential never travel in clear.
    init?(baseURL: URL, timeout: TimeInterval = 10, idToken: @escaping () async throws -> String) {
        guard baseURL.scheme?.lowercased() == "https" else { return nil }
        self.baseURL = baseURL
        self.idToken = idToken
        let config = URLSessionConfiguration.ephemeral // no cookies, no cache
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = 2 * timeout
        config.waitsForConnectivity = false
        session = URLSession(configuration: config)
    }

    /// POSTs `body` to `path` and returns the JSON object authserver answers.
    /// Throws AuthserverError for a refusal, URLError for network failures
    /// and timeouts.
    func post(_ path: String, body: [String: Any]) async throws -> [String: Any] {
        var request = URLRequest(url: baseURL.appendingPathComponent(path))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.setValue("Bearer \(try await idToken())", forHTTPHeaderField: "Authorization")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard http.statusCode == 200 else {
            throw AuthserverError(
                status: http.statusCode,
                title: json?["title"] as? String,
                detail: json?["detail"] as? String,
                requestId: (json?["requestId"] as? String) ?? http.value(forHTTPHeaderField: "X-Request-Id"),
                retryAfterSeconds: http.value(forHTTPHeaderField: "Retry-After").flatMap { Int($0) })
        }
        guard let body = json else { throw URLError(.cannotParseResponse) }
        return body
    }

    /// The Sinch user id authserver issues for the signed-in user: the
    /// identity token's user id after the provider's user_id_transform.
    /// Create the Sinch client with it.
    func sinchUserId() async throws -> String {
        guard let id = try await post("v1/registration-tokens", body: [:])["userId"] as? String, !id.isEmpty else {
            throw URLError(.cannotParseResponse)
        }
        return id
    }
}
