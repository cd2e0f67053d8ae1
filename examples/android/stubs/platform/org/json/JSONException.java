package org.json;

/** Stand-in for Android's org.json.JSONException (a RuntimeException there too). */
public class JSONException extends RuntimeException {
    public JSONException(String message) {
        super(message);
    }
}
