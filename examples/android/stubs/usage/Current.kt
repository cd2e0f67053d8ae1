// The listener code from AuthserverCredentials.kt's header, compiled against
// the stand-ins, and a main() that runs the example against a real
// authserver (examples_test.go starts `authserver dev` for it).
package com.example.sinchauth.usage

import com.example.sinchauth.AuthserverClient
import com.example.sinchauth.AuthserverCredentials
import com.sinch.android.rtc.ClientRegistration
import com.sinch.android.rtc.SinchClient
import com.sinch.android.rtc.SinchClientListener
import java.net.ServerSocket
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executor
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

class AppListener(private val sinchClient: SinchClient, private val credentials: AuthserverCredentials) : SinchClientListener {
    override fun onCredentialsRequired(clientRegistration: ClientRegistration) {
        credentials.provide(sinchClient.localUserId, clientRegistration)
    }
}

/** Records what the example told the SDK. */
class Recorder : ClientRegistration {
    val done = CountDownLatch(1)
    @Volatile var outcome = "none"
    override fun register(jwt: String) { outcome = "REGISTERED $jwt"; done.countDown() }
    override fun registerFailed() { outcome = "FAILED"; done.countDown() }
    fun await(): String { check(done.await(30, TimeUnit.SECONDS)) { "the SDK was never called back" }; return outcome }
}

fun runOnce(credentials: AuthserverCredentials, userId: String): String {
    val r = Recorder()
    val client = object : SinchClient { override fun getLocalUserId() = userId }
    AppListener(client, credentials).onCredentialsRequired(r)
    return r.await()
}

/** args: baseUrl idToken */
fun main(args: Array<String>) {
    val worker = Executors.newSingleThreadExecutor()
    val sameThread = Executor { it.run() }
    val api = AuthserverClient(args[0], { args[1] })
    val userId = api.sinchUserId()
    println("USER $userId")
    val credentials = AuthserverCredentials(api, worker, sameThread, { System.err.println("onError: $it") })
    println("OWN " + runOnce(credentials, userId))
    println("OTHER " + runOnce(credentials, userId + "-other"))
    // A server that accepts and never answers: the timeouts must end the wait.
    ServerSocket(0).use { silent ->
        val slow = AuthserverClient("https://127.0.0.1:${silent.localPort}", { args[1] }, 500, 500)
        val started = System.nanoTime()
        val out = runOnce(AuthserverCredentials(slow, worker, sameThread), userId)
        println("TIMEOUT $out ${(System.nanoTime() - started) / 1_000_000}ms")
    }
    val plain = try { AuthserverClient(args[0].replace("https://", "http://"), { args[1] }); "accepted" } catch (e: IllegalArgumentException) { "refused" }
    println("HTTP $plain")
    worker.shutdown()
}
