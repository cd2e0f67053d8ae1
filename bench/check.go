package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

// makeBearers signs tokensPerVU identity tokens (distinct users) for each of
// c virtual users, valid for an hour.
func makeBearers(idp *oidctest.Provider, c, tokensPerVU int) [][]bearer {
	now := time.Now()
	out := make([][]bearer, c)
	for i := range out {
		for k := range tokensPerVU {
			sub := "vu" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
			claims := idp.Claims(sub, benchAudience, now)
			claims["exp"] = now.Add(time.Hour).Unix()
			out[i] = append(out[i], bearer{
				authz: "Bearer " + idp.Sign("RS256", claims),
				body:  `{"userId":"` + sub + `"}`,
			})
		}
	}
	return out
}

// checkSameTokens asks every JWT-minting side for one token and checks that
// each verifies with the application secret and that all have the same
// header and the same claims in the same order: the comparison is only fair
// if both servers do the same work.
func checkSameTokens(ctx context.Context, e *env, sides []side, drivers []*driver) error {
	var ref, refSide string
	for i, sd := range sides {
		switch sd.Load {
		case loadJWTKey, loadJWTBearer, loadNewConn:
		default:
			continue
		}
		if sd.Server == baselineBare || sd.Server == baselineHello {
			continue
		}
		v := drivers[i].vus[0]
		req := drivers[i].w.request(ctx, v)
		resp, err := v.client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", sd.Label, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d: %s", sd.Label, resp.StatusCode, body)
		}
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return fmt.Errorf("%s: %w", sd.Label, err)
		}
		shape, err := tokenShape(out.Token, e.secret)
		if err != nil {
			return fmt.Errorf("%s: token %s: %w", sd.Label, out.Token, err)
		}
		if ref == "" {
			ref, refSide = shape, sd.Label
		} else if shape != ref {
			return fmt.Errorf("tokens differ in shape:\n  %s: %s\n  %s: %s", refSide, ref, sd.Label, shape)
		}
	}
	return nil
}

// tokenShape verifies a registration JWT with the application secret and
// returns its header and its claim names in order.
func tokenShape(token, secret string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", err
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return "", err
	}
	date, ok := strings.CutPrefix(h.Kid, "hkdfv1-")
	if !ok || len(date) != 8 {
		return "", fmt.Errorf("kid %q", h.Kid)
	}
	raw, _ := base64.StdEncoding.DecodeString(secret)
	m := hmac.New(sha256.New, raw)
	m.Write([]byte(date))
	key := m.Sum(nil)
	if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).Parse(token, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return "", err
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(claims))
	var names []string
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		names = append(names, fmt.Sprint(t))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return strings.ReplaceAll(string(hdr), date, "YYYYMMDD") + " " + strings.Join(names, ","), nil
}

// table prints a Markdown table with aligned columns, readable as text and
// ready to paste.
type table struct {
	w    io.Writer
	rows [][]string
}

func newTable(w io.Writer) *table { return &table{w: w} }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) flush() error {
	if len(t.rows) == 0 {
		return nil
	}
	widths := make([]int, len(t.rows[0]))
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		b.WriteString("|")
		for i, c := range r {
			b.WriteString(" " + c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	line(t.rows[0])
	sep := make([]string, len(widths))
	for i, w := range widths {
		sep[i] = strings.Repeat("-", w)
	}
	line(sep)
	for _, r := range t.rows[1:] {
		line(r)
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}
