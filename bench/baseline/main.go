// Command baseline is the yardstick of the load harness (go run ./bench): the
// least a server can do to answer POST /v1/registration-tokens with the same
// registration JWT authserver mints, over the same TLS.
//
//	go run ./bench/baseline -listen 127.0.0.1:8443 -cert cert.pem -key key.pem -app-secret BASE64
//
// In the default -mode jwt it decodes {"userId"} from the body and mints the
// token the obvious way, with golang-jwt: header {"alg":"HS256","kid":
// "hkdfv1-YYYYMMDD"} (typ removed), MapClaims (marshalled with sorted keys),
// signing key HMAC-SHA256(decoded secret, "YYYYMMDD") derived per request. No
// authentication, rate limits, metrics, logging, request ids or security
// headers: everything authserver does beyond this is what the harness
// measures. With -mode bare it is a bare net/http TLS server whose handler
// writes two bytes, the reference for handshake rates. With -mode hello it
// is the stack's limit: a net/http TLS server that reads each POST's body and
// answers it with a fixed 400-byte JSON body (helloBody), no router, no
// decoding, no signing; go run ./bench reports every scenario's ratio to it.
//
// Every mode uses authserver's TLS settings (tlsutil.ServerConfig) and the
// http.Server of `authserver serve` (app.PublicServer), so the comparison is of
// application work, not of server tuning.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/bench/internal/cli"
	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

func main() { cli.Main("baseline", run) }

func run(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS listen address")
	certFile := fs.String("cert", "", "TLS certificate file (PEM)")
	keyFile := fs.String("key", "", "TLS private key file (PEM)")
	mode := fs.String("mode", "jwt", "jwt: mint registration JWTs; bare: a two-byte handler; hello: a fixed 400-byte JSON body for every POST")
	appKey := fs.String("app-key", "bench-app", "application key (iss and sub)")
	appSecret := fs.String("app-secret", "", "application secret, standard Base64 (jwt mode)")
	ttl := fs.Duration("ttl", 10*time.Minute, "token lifetime (exp - iat)")
	pprofListen := fs.String("pprof-listen", "", "serve /debug/pprof/ over plain HTTP on this address (the harness's -pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *certFile == "" || *keyFile == "" {
		return errors.New("-cert and -key are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}

	var h http.Handler
	switch *mode {
	case "jwt":
		secret, err := base64.StdEncoding.DecodeString(*appSecret)
		if err != nil || len(secret) == 0 {
			return errors.New("-app-secret must be non-empty standard Base64")
		}
		r := chi.NewRouter()
		r.Post("/v1/registration-tokens", mint(*appKey, secret, *ttl))
		h = r
	case "bare":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = w.Write([]byte("ok"))
		})
	case "hello":
		h = http.HandlerFunc(hello)
	default:
		return fmt.Errorf("-mode %q: want jwt, bare or hello", *mode)
	}

	tlsConf := tlsutil.ServerConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := app.PublicServer(h, tlsConf)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsConf)) }()
	if *pprofListen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pl, err := net.Listen("tcp", *pprofListen)
		if err != nil {
			return err
		}
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		defer ps.Close()
		go func() { errc <- ps.Serve(pl) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// helloBody is -mode hello's answer: 400 bytes of JSON, about the size of
// authserver's token response.
var helloBody = func() []byte {
	const head, tail = `{"token":"`, `"}`
	b := make([]byte, 0, 400)
	b = append(b, head...)
	for len(b) < 400-len(tail) {
		b = append(b, 'x')
	}
	return append(b, tail...)
}()

// hello answers every POST with helloBody: the least an HTTPS JSON endpoint
// can do.
func hello(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{"400"}
	_, _ = w.Write(helloBody)
}

type tokenResponse struct {
	Token          string `json:"token"`
	ApplicationKey string `json:"applicationKey"`
	UserID         string `json:"userId"`
	IssuedAt       string `json:"issuedAt"`
	ExpiresAt      string `json:"expiresAt"`
}

// mint answers one token request the way a first implementation would.
func mint(appKey string, secret []byte, ttl time.Duration) http.HandlerFunc {
	iss := "//rtc.sinch.com/applications/" + appKey
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UserID string `json:"userId"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.UserID == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		now := time.Now().UTC()
		date := now.Format("20060102")
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(date))
		key := m.Sum(nil)

		var n [16]byte
		_, _ = rand.Read(n[:])
		n[6] = n[6]&0x0f | 0x40
		n[8] = n[8]&0x3f | 0x80
		h := hex.EncodeToString(n[:])
		nonce := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]

		iat, exp := now.Unix(), now.Add(ttl).Unix()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": iss, "sub": iss + "/users/" + req.UserID, "nonce": nonce, "iat": iat, "exp": exp,
		})
		delete(tok.Header, "typ")
		tok.Header["kid"] = "hkdfv1-" + date
		signed, err := tok.SignedString(key)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		body, _ := json.Marshal(tokenResponse{
			Token: signed, ApplicationKey: appKey, UserID: req.UserID,
			IssuedAt: time.Unix(iat, 0).UTC().Format(time.RFC3339), ExpiresAt: time.Unix(exp, 0).UTC().Format(time.RFC3339),
		})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	}
}
