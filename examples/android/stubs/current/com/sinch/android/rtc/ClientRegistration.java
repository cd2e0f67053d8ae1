package com.sinch.android.rtc;

/** Stand-in: the current SDK's registration callback object. */
public interface ClientRegistration {
    void register(String jwt);

    void registerFailed();
}
