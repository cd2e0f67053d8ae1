// AuthserverSignatures.kt — the legacy Sinch Android SDK (3.x) registration
// hook answered with a signature and sequence from authserver.
//
// SDK (com.sinch.android.rtc, 3.x; see examples/README.md for the
// references): SinchClientListener.onRegistrationCredentialsRequired(client:
// SinchClient, clientRegistration: ClientRegistration) must end in
// ClientRegistration.register(signature: String, sequence: Long) or
// ClientRegistration.registerFailed(). Every failure here ends in
// registerFailed(). Uses AuthserverClient from ../AuthserverClient.kt.
//
// In the app's SinchClientListener:
//
//     override fun onRegistrationCredentialsRequired(client: SinchClient, clientRegistration: ClientRegistration) {
//         signatures.provide(client.localUserId, clientRegistration)
//     }

package com.example.sinchauth.legacy

import com.example.sinchauth.AuthserverClient
import com.sinch.android.rtc.ClientRegistration
import java.util.concurrent.Executor
import org.json.JSONObject

/**
 * AuthserverSignatures answers the legacy SDK's
 * onRegistrationCredentialsRequired with a signature and sequence for the
 * SinchClient's own user. Each call uses up one sequence number; authserver
 * never hands one out twice. [worker], [callbacks] and [onError] are as in
 * AuthserverCredentials.
 */
class AuthserverSignatures(
    private val client: AuthserverClient,
    private val worker: Executor,
    private val callbacks: Executor,
    private val onError: (Throwable) -> Unit = {}
) {
    /** Calls register(signature, sequence) or registerFailed(). Returns at once. */
    fun provide(userId: String, clientRegistration: ClientRegistration) {
        try {
            worker.execute {
                val signature: String
                val sequence: Long
                try {
                    val cred = client.post("v1/registration-signatures", JSONObject().put("userId", userId))
                    val issuedFor = cred.getString("userId")
                    check(issuedFor == userId) { "authserver signed for $issuedFor, but the SinchClient is $userId" }
                    signature = cred.getString("signature")
                    sequence = cred.getLong("sequence")
                    check(sequence > 0) { "authserver answered sequence $sequence" }
                } catch (t: Throwable) {
                    fail(clientRegistration, t)
                    return@execute
                }
                callbacks.execute { clientRegistration.register(signature, sequence) }
            }
        } catch (t: Throwable) {
            fail(clientRegistration, t)
        }
    }

    private fun fail(clientRegistration: ClientRegistration, t: Throwable) {
        try {
            callbacks.execute { clientRegistration.registerFailed() }
        } catch (e: Throwable) {
            clientRegistration.registerFailed()
        }
        onError(t)
    }
}
