package httpapi

import (
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonRecords writes the one info record of each request as a JSON line,
// byte for byte what slog's JSONHandler writes for the same record (time,
// level, msg, then the attributes; TestRecordMatchesSlog and
// FuzzRecordMatchesSlog check it against slog). It exists for speed: through
// slog.JSONHandler the record was the largest single cost of the request path
// after signing (BenchmarkRequestRecord: slog / by hand, in the README's
// performance table); one Write per record, as the handler does.
type jsonRecords struct {
	w    io.Writer
	bufs sync.Pool // *[]byte
}

func newJSONRecords(w io.Writer) *jsonRecords {
	return &jsonRecords{w: w, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}}
}

// write writes the record, or returns false (writing nothing) when an
// attribute is of a kind it does not encode: the caller then goes through
// slog.
func (j *jsonRecords) write(t time.Time, msg string, attrs []slog.Attr) bool {
	bp := j.bufs.Get().(*[]byte)
	b, ok := appendJSONRecord((*bp)[:0], t, msg, attrs)
	if ok {
		_, _ = j.w.Write(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b
		j.bufs.Put(bp)
	}
	return ok
}

// appendJSONRecord appends an info record as slog's JSONHandler formats it,
// newline included. ok is false when an attribute is not a string, an
// integer or a finite float64, or the time's year has not four digits.
func appendJSONRecord(b []byte, t time.Time, msg string, attrs []slog.Attr) (_ []byte, ok bool) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":`...)
	b = appendJSONString(b, msg)
	for _, a := range attrs {
		b = append(b, ',')
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		switch a.Value.Kind() {
		case slog.KindString:
			b = appendJSONString(b, a.Value.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, a.Value.Int64(), 10)
		case slog.KindUint64: // a signature's sequence
			b = strconv.AppendUint(b, a.Value.Uint64(), 10)
		case slog.KindFloat64:
			f := a.Value.Float64()
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return b, false
			}
			b = appendJSONFloat(b, f)
		default:
			return b, false
		}
	}
	return append(b, "}\n"...), true
}

// appendJSONFloat formats f as encoding/json does (which slog calls for
// floats): 'f' format, or 'e' for very small or large magnitudes with the
// exponent's leading zero dropped.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s quoted as slog's JSONHandler quotes it:
// encoding/json's escaping without the HTML escapes; invalid UTF-8 becomes
// U+FFFD, and U+2028 and U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
