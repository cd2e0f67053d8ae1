package com.sinch.android.rtc;

/** Stand-in: the registration callback of the current SDK's listener. */
public interface SinchClientListener {
    void onCredentialsRequired(ClientRegistration clientRegistration);
}
