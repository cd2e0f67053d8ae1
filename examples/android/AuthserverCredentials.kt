// AuthserverCredentials.kt — the current Sinch Android SDK's registration
// hook answered with a JWT from authserver.
//
// SDK (com.sinch.android.rtc, current generation; see examples/README.md for
// the references): SinchClientListener.onCredentialsRequired(clientRegistration:
// ClientRegistration) must end in ClientRegistration.register(jwt: String) or
// ClientRegistration.registerFailed(). The SDK waits for one of them, so every
// failure here (network, timeout, refusal, bad JSON, a JWT for another user,
// even a rejected Executor) ends in registerFailed().
//
// In the app's SinchClientListener:
//
//     override fun onCredentialsRequired(clientRegistration: ClientRegistration) {
//         credentials.provide(sinchClient.localUserId, clientRegistration)
//     }
//
// where the SinchClient was built with the user id authserver named:
// AuthserverClient.sinchUserId(), on a worker thread, before
// SinchClient.builder()...userId(id).build().

package com.example.sinchauth

import com.sinch.android.rtc.ClientRegistration
import java.util.concurrent.Executor

/**
 * AuthserverCredentials answers the SDK's onCredentialsRequired with a
 * registration JWT for the SinchClient's own user.
 *
 * [worker] runs the blocking HTTP call (an Executors.newSingleThreadExecutor(),
 * say); [callbacks] is where the SDK is called back, the thread that built the
 * SinchClient (ContextCompat.getMainExecutor(context) for the main thread).
 * [onError] sees every failure, for logging; never the JWT.
 */
class AuthserverCredentials(
    private val client: AuthserverClient,
    private val worker: Executor,
    private val callbacks: Executor,
    private val onError: (Throwable) -> Unit = {}
) {
    /**
     * Fetches a JWT for [userId] (the SinchClient's localUserId) and calls
     * clientRegistration.register(jwt), or registerFailed() on any failure.
     * Returns at once.
     */
    fun provide(userId: String, clientRegistration: ClientRegistration) =
        client.answer(
            "v1/registration-tokens", userId, worker, callbacks, onError,
            read = { it.getString("token") },
            register = { jwt -> clientRegistration.register(jwt) },
            registerFailed = { clientRegistration.registerFailed() }
        )
}
