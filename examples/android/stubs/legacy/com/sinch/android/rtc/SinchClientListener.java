package com.sinch.android.rtc;

/** Stand-in: the registration callback of SDK 3.x's listener. */
public interface SinchClientListener {
    void onRegistrationCredentialsRequired(SinchClient client, ClientRegistration clientRegistration);
}
