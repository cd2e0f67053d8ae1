package com.sinch.android.rtc;

/** Stand-in: the member of SDK 3.x's SinchClient the examples use. */
public interface SinchClient {
    String getLocalUserId();
}
