// AuthserverCredentials.kt — the Sinch Android SDK's registration hook
// fetching credentials from authserver.
//
// When a SinchClient starts for a user it has not registered yet, the SDK
// calls SinchClientListener.onCredentialsRequired(clientRegistration) and
// waits for clientRegistration.register(jwt) or
// clientRegistration.registerFailed(). That is the shape of the SDK
// callback this file relies on; check it against your SDK version. The
// application secret stays on authserver: the app only ever sees a
// credential for its own signed-in user.
//
// Who is calling: the app sends `Authorization: Bearer <identity token>`,
// the token from the app's own login (an OIDC ID token or similar), which
// authserver checks against its configured identity providers and which
// decides the Sinch user id. Never put an authserver API key (X-API-Key) in
// an app: API keys are for trusted backends, which may ask for any user.
//
// Needs only the platform's HttpURLConnection and org.json, plus
// kotlinx-coroutines. Not compiled here (no Android toolchain); the same
// flow as ../web/authserver-credentials.js, which is tested against a real
// server.

package com.example.sinch

import android.util.Log
import com.sinch.android.rtc.ClientRegistration
import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.json.JSONException
import org.json.JSONObject

/** The answer of POST /v1/registration-tokens. Times are RFC 3339 strings. */
data class RegistrationToken(
    val token: String,
    val applicationKey: String,
    val userId: String,
    val issuedAt: String,
    val expiresAt: String,
)

/**
 * The answer of POST /v1/registration-signatures (the legacy scheme).
 * [sequence] goes up by one on every call for the user.
 */
data class RegistrationSignature(
    val applicationKey: String,
    val userId: String,
    val sequence: Long,
    val signature: String,
)

/**
 * A refusal or failure, from authserver's application/problem+json body
 * (RFC 9457). [retryAfterSeconds] is set on 429 and 503.
 */
class AuthserverException(
    val status: Int,
    val title: String,
    val type: String?,
    val detail: String?,
    val requestId: String?,
    val retryAfterSeconds: Int?,
) : IOException("authserver: $status $title" + (detail?.let { ": $it" } ?: ""))

/**
 * Fetches registration credentials for the signed-in user.
 *
 * @param baseUrl authserver's public HTTPS URL, e.g. https://auth.example.com
 * @param idToken the signed-in user's identity token; called on every
 *   request, so it may refresh an expired one.
 */
class AuthserverCredentials(
    private val baseUrl: URL,
    private val idToken: suspend () -> String,
) {
    /** A registration JWT for the identity token's own user. */
    suspend fun token(): RegistrationToken = post("/v1/registration-tokens") {
        RegistrationToken(
            getString("token"), getString("applicationKey"), getString("userId"),
            getString("issuedAt"), getString("expiresAt"),
        )
    }

    /** A legacy signature and the user's next sequence. */
    suspend fun signature(): RegistrationSignature = post("/v1/registration-signatures") {
        RegistrationSignature(getString("applicationKey"), getString("userId"), getLong("sequence"), getString("signature"))
    }

    private suspend fun <T> post(path: String, decode: JSONObject.() -> T): T {
        val bearer = "Bearer ${idToken()}"
        return withContext(Dispatchers.IO) {
            // Appended, so a server behind a path prefix works too.
            val conn = URL(baseUrl.toString().trimEnd('/') + path).openConnection() as HttpURLConnection
            try {
                conn.requestMethod = "POST"
                conn.doOutput = true
                conn.setRequestProperty("Content-Type", "application/json")
                conn.setRequestProperty("Accept", "application/json")
                conn.setRequestProperty("Authorization", bearer)
                // No userId: authserver issues for the identity token's user,
                // and answers 403 to anyone naming another user.
                conn.outputStream.use { it.write("{}".toByteArray()) }

                val status = conn.responseCode
                val ok = status in 200..299
                val body = (if (ok) conn.inputStream else conn.errorStream)
                    ?.bufferedReader()?.use { it.readText() }.orEmpty()
                if (!ok) throw problem(status, body, conn)
                try {
                    JSONObject(body).decode()
                } catch (e: JSONException) {
                    throw IOException("authserver: unexpected response", e)
                }
            } finally {
                conn.disconnect()
            }
        }
    }

    private fun problem(status: Int, body: String, conn: HttpURLConnection): AuthserverException {
        val p = try { JSONObject(body) } catch (e: JSONException) { JSONObject() }
        return AuthserverException(
            status = status,
            title = p.optString("title").ifEmpty { conn.responseMessage ?: "HTTP $status" },
            type = p.optString("type").ifEmpty { null },
            detail = p.optString("detail").ifEmpty { null },
            requestId = p.optString("requestId").ifEmpty { conn.getHeaderField("X-Request-Id") },
            retryAfterSeconds = conn.getHeaderField("Retry-After")?.toIntOrNull(),
        )
    }
}

/**
 * Answers the SDK's credential request with a registration JWT from
 * authserver. Wire it into the app's SinchClientListener:
 *
 * ```
 * val registration = AuthserverRegistration(credentials, appScope)
 * // in the SinchClientListener added with sinchClient.addSinchClientListener(...):
 * override fun onCredentialsRequired(clientRegistration: ClientRegistration) =
 *     registration.onCredentialsRequired(clientRegistration)
 * ```
 *
 * The current SDK registers with JWTs; [AuthserverCredentials.signature] is
 * there for apps still on the legacy scheme.
 *
 * @param scope where the request runs, e.g. an application-wide scope.
 */
class AuthserverRegistration(
    private val credentials: AuthserverCredentials,
    private val scope: CoroutineScope,
) {
    fun onCredentialsRequired(clientRegistration: ClientRegistration) {
        scope.launch {
            val jwt = try {
                credentials.token().token
            } catch (e: IOException) {
                // No network, an expired login (401), ... : tell the SDK.
                // (AuthserverException is an IOException.)
                Log.w(TAG, "registration credentials", e)
                clientRegistration.registerFailed()
                return@launch
            }
            clientRegistration.register(jwt)
        }
    }

    private companion object {
        const val TAG = "AuthserverRegistration"
    }
}
