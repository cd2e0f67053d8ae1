// AuthserverClient.kt — the part shared by the Android examples: one POST
// to authserver with the signed-in user's identity token, over TLS only,
// with connect and read timeouts, answering JSON or throwing; and answer(),
// which runs it off the SDK's thread and always ends in the SDK's register
// or registerFailed.
//
// Platform APIs only: javax.net.ssl.HttpsURLConnection and org.json (part of
// Android). No kotlinx-coroutines: the SDK callbacks hand the work to an
// Executor, so this compiles with any Kotlin and any coroutine setup.

package com.example.sinchauth

import java.io.InputStream
import java.net.URL
import java.util.concurrent.Executor
import javax.net.ssl.HttpsURLConnection
import org.json.JSONObject

/**
 * A refusal or failure, from authserver's application/problem+json body
 * (RFC 9457). [status] is the HTTP status; [retryAfterSeconds] is set on 429
 * and 503.
 */
class AuthserverException(
    val status: Int,
    val title: String?,
    val detail: String?,
    val requestId: String?,
    val retryAfterSeconds: Long?
) : Exception("authserver: $status ${title ?: ""}${if (detail != null) ": $detail" else ""}")

/**
 * AuthserverClient calls authserver's credential endpoints for the signed-in
 * user.
 *
 * [baseUrl] is authserver's public https URL. [idToken] returns the user's
 * current identity token from the app's login (an OIDC ID token or
 * similar); it runs on the worker thread, so it may refresh the token.
 * Never send an authserver API key from an app: API keys are for trusted
 * backends, which may ask for any user.
 */
class AuthserverClient(
    baseUrl: String,
    private val idToken: () -> String,
    private val connectTimeoutMillis: Int = 10_000,
    private val readTimeoutMillis: Int = 10_000
) {
    private val base: URL = URL(if (baseUrl.endsWith("/")) baseUrl else "$baseUrl/")

    init {
        // TLS only: the identity token and the credential never travel in clear.
        require(base.protocol == "https") { "authserver baseUrl must be https, not ${base.protocol}" }
    }

    /**
     * POSTs [body] to [path] and returns the JSON answer. Blocks: call it on
     * a worker thread. Throws AuthserverException for a refusal, IOException
     * for network failures and timeouts, org.json.JSONException for a body
     * that is not JSON.
     */
    fun post(path: String, body: JSONObject): JSONObject {
        val conn = URL(base, path).openConnection() as HttpsURLConnection
        try {
            conn.connectTimeout = connectTimeoutMillis
            conn.readTimeout = readTimeoutMillis
            conn.requestMethod = "POST"
            conn.doOutput = true
            conn.useCaches = false
            conn.instanceFollowRedirects = false
            conn.setRequestProperty("Content-Type", "application/json")
            conn.setRequestProperty("Accept", "application/json")
            conn.setRequestProperty("Authorization", "Bearer " + idToken())
            conn.outputStream.use { it.write(body.toString().toByteArray(Charsets.UTF_8)) }
            val status = conn.responseCode
            if (status == 200) {
                return JSONObject(readAll(conn.inputStream))
            }
            val text = conn.errorStream?.let { readAll(it) } ?: ""
            val problem = try { JSONObject(text) } catch (e: Exception) { JSONObject() }
            throw AuthserverException(
                status = status,
                title = problem.optString("title", conn.responseMessage ?: ""),
                detail = if (problem.has("detail")) problem.optString("detail") else null,
                requestId = if (problem.has("requestId")) problem.optString("requestId") else conn.getHeaderField("X-Request-Id"),
                retryAfterSeconds = conn.getHeaderField("Retry-After")?.toLongOrNull()
            )
        } finally {
            conn.disconnect()
        }
    }

    /**
     * Answers one SDK credentials callback for [userId] without blocking: on
     * [worker], POSTs {"userId"} to [path], checks that the answer is for
     * [userId], and hands what [read] takes from it to [register] on
     * [callbacks]. The SDK waits until it is told, so every failure
     * (network, timeout, refusal, bad JSON, an answer for another user, even
     * a rejected Executor) ends in [registerFailed] instead; [onError] sees
     * it, for logging.
     */
    fun <T> answer(
        path: String,
        userId: String,
        worker: Executor,
        callbacks: Executor,
        onError: (Throwable) -> Unit,
        read: (JSONObject) -> T,
        register: (T) -> Unit,
        registerFailed: () -> Unit
    ) {
        val fail = { t: Throwable ->
            try {
                callbacks.execute { registerFailed() }
            } catch (e: Throwable) {
                registerFailed() // no callback thread left: tell the SDK from here
            }
            onError(t)
        }
        try {
            worker.execute {
                val credential: T
                try {
                    // Naming the user makes authserver refuse (403) rather than
                    // answer for someone else; the answer is checked as well.
                    val cred = post(path, JSONObject().put("userId", userId))
                    val answeredFor = cred.getString("userId")
                    check(answeredFor == userId) { "authserver answered for $answeredFor, but the SinchClient is $userId" }
                    credential = read(cred)
                } catch (t: Throwable) {
                    fail(t)
                    return@execute
                }
                callbacks.execute { register(credential) }
            }
        } catch (t: Throwable) {
            fail(t) // the worker refused the task
        }
    }

    private fun readAll(s: InputStream): String = s.use { String(it.readBytes(), Charsets.UTF_8) }

    /**
     * The Sinch user id authserver issues for the signed-in user: the
     * identity token's user id after the provider's user_id_transform. Build
     * the SinchClient with it (SinchClient.builder()...userId(id)). Blocks.
     */
    fun sinchUserId(): String {
        val id = post("v1/registration-tokens", JSONObject()).getString("userId")
        check(id.isNotEmpty()) { "authserver answered an empty userId" }
        return id
    }
}
