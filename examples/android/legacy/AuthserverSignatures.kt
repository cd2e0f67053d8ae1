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
    fun provide(userId: String, clientRegistration: ClientRegistration) =
        client.answer(
            "v1/registration-signatures", userId, worker, callbacks, onError,
            read = { cred ->
                val sequence = cred.getLong("sequence")
                check(sequence > 0) { "authserver answered sequence $sequence" }
                Pair(cred.getString("signature"), sequence)
            },
            register = { (signature, sequence) -> clientRegistration.register(signature, sequence) },
            registerFailed = { clientRegistration.registerFailed() }
        )
}
