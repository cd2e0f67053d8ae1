package com.sinch.android.rtc;

/** Stand-in: SDK 3.x's registration callback object. */
public interface ClientRegistration {
    void register(String signature, long sequence);

    void registerFailed();
}
