package com.sinch.android.rtc;

/** Stand-in: the member of the current SDK's SinchClient the examples use. */
public interface SinchClient {
    String getLocalUserId();
}
