// The listener code from legacy/AuthserverSignatures.kt's header, compiled
// against the SDK 3.x stand-ins, and a main() that runs the example against
// a real authserver.
package com.example.sinchauth.usage

import com.example.sinchauth.AuthserverClient
import com.example.sinchauth.legacy.AuthserverSignatures
import com.sinch.android.rtc.ClientRegistration
import com.sinch.android.rtc.SinchClient
import com.sinch.android.rtc.SinchClientListener
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executor
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

class LegacyAppListener(private val signatures: AuthserverSignatures) : SinchClientListener {
    override fun onRegistrationCredentialsRequired(client: SinchClient, clientRegistration: ClientRegistration) {
        signatures.provide(client.localUserId, clientRegistration)
    }
}

class LegacyRecorder : ClientRegistration {
    val done = CountDownLatch(1)
    @Volatile var outcome = "none"
    override fun register(signature: String, sequence: Long) { outcome = "SIGNED $sequence $signature"; done.countDown() }
    override fun registerFailed() { outcome = "FAILED"; done.countDown() }
    fun await(): String { check(done.await(30, TimeUnit.SECONDS)) { "the SDK was never called back" }; return outcome }
}

/** args: baseUrl idToken */
fun main(args: Array<String>) {
    val worker = Executors.newSingleThreadExecutor()
    val api = AuthserverClient(args[0], { args[1] })
    val userId = api.sinchUserId()
    println("USER $userId")
    val listener = LegacyAppListener(AuthserverSignatures(api, worker, Executor { it.run() }, { System.err.println("onError: $it") }))
    for (u in listOf(userId, userId, userId + "-other")) {
        val r = LegacyRecorder()
        listener.onRegistrationCredentialsRequired(object : SinchClient { override fun getLocalUserId() = u }, r)
        println((if (u == userId) "OWN " else "OTHER ") + r.await())
    }
    worker.shutdown()
}
