package org.json;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Stand-in for the part of Android's org.json.JSONObject the examples use:
 * flat objects of strings, numbers, booleans and null. Enough to run the
 * examples against authserver on a desktop JVM; not a general JSON parser.
 */
public class JSONObject {
    private final Map<String, Object> m = new LinkedHashMap<>();

    public JSONObject() {}

    public JSONObject(String json) throws JSONException {
        Parser p = new Parser(json);
        p.ws();
        p.expect('{');
        p.ws();
        if (p.peek() == '}') {
            p.i++;
        } else {
            while (true) {
                p.ws();
                String k = p.string();
                p.ws();
                p.expect(':');
                p.ws();
                m.put(k, p.value());
                p.ws();
                char c = p.next();
                if (c == '}') break;
                if (c != ',') throw new JSONException("expected , or } at " + (p.i - 1));
            }
        }
        p.ws();
        if (p.i != json.length()) throw new JSONException("trailing data");
    }

    public JSONObject put(String name, Object value) {
        m.put(name, value);
        return this;
    }

    public boolean has(String name) {
        return m.containsKey(name);
    }

    public String getString(String name) throws JSONException {
        Object v = m.get(name);
        if (!(v instanceof String)) throw new JSONException(name + " is not a string");
        return (String) v;
    }

    public long getLong(String name) throws JSONException {
        Object v = m.get(name);
        if (!(v instanceof Number)) throw new JSONException(name + " is not a number");
        return ((Number) v).longValue();
    }

    public String optString(String name) {
        return optString(name, "");
    }

    public String optString(String name, String fallback) {
        Object v = m.get(name);
        return v == null ? fallback : v.toString();
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<String, Object> e : m.entrySet()) {
            if (b.length() > 1) b.append(',');
            quote(b, e.getKey());
            b.append(':');
            Object v = e.getValue();
            if (v instanceof String) quote(b, (String) v);
            else b.append(v);
        }
        return b.append('}').toString();
    }

    private static void quote(StringBuilder b, String s) {
        b.append('"');
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        b.append('"');
    }

    private static final class Parser {
        final String s;
        int i;

        Parser(String s) {
            this.s = s;
        }

        char peek() {
            if (i >= s.length()) throw new JSONException("unexpected end");
            return s.charAt(i);
        }

        char next() {
            char c = peek();
            i++;
            return c;
        }

        void ws() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        }

        void expect(char c) {
            if (next() != c) throw new JSONException("expected " + c + " at " + (i - 1));
        }

        String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                char c = next();
                if (c == '"') return b.toString();
                if (c == '\\') {
                    char e = next();
                    switch (e) {
                        case 'n': b.append('\n'); break;
                        case 't': b.append('\t'); break;
                        case 'r': b.append('\r'); break;
                        case 'b': b.append('\b'); break;
                        case 'f': b.append('\f'); break;
                        case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                        default: b.append(e);
                    }
                } else {
                    b.append(c);
                }
            }
        }

        Object value() {
            char c = peek();
            if (c == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
            if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String num = s.substring(start, i);
            if (num.isEmpty()) throw new JSONException("unexpected " + c + " at " + start);
            if (num.matches("-?\\d+")) return Long.parseLong(num);
            return Double.parseDouble(num);
        }
    }
}
