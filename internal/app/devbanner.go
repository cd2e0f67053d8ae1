package app

import (
	"fmt"
	"net"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

// Banner is the text `authserver dev` prints once it listens on public and
// admin: the addresses, the demo application and API key, curl lines to try,
// and the demo identity token idToken for user (minted at now, from cfg).
func (d *Dev) Banner(cfg *config.Config, user, idToken string, now time.Time, public, admin net.Addr) string {
	demo := cfg.DefaultApplication()
	// Where the demo application's secret comes from, for the banner's
	// line and for the offline command it suggests.
	secretFrom, secretHint := demo.SecretFile, "--app-secret-file "+d.SecretFile
	if demo.SecretFile == "" {
		secretFrom, secretHint = "AUTHSERVER_APP_SECRET", "(secret from AUTHSERVER_APP_SECRET)"
	}
	url := "https://" + hostPort(public)
	return fmt.Sprintf(`authserver dev is running. Not for production.

  public API   %[1]s   (self-signed certificate: %[2]s)
  admin        http://%[3]s/metrics   /healthz   /readyz
  application  %[4]s   (default; secret in %[5]s)
  API key      %[6]s

Get a registration JWT:

  curl --cacert %[2]s -H 'X-API-Key: %[6]s' -H 'Content-Type: application/json' \
    -d '{"userId":"alice"}' %[1]s/v1/registration-tokens

Get a legacy signature and sequence:

  curl --cacert %[2]s -H 'X-API-Key: %[6]s' -H 'Content-Type: application/json' \
    -d '{"userId":"alice"}' %[1]s/v1/registration-signatures

Check a token:

  go run ./cmd/authserver verify %[7]s TOKEN

As an end user, the way an app or a browser page calls (no API key): a demo
identity token for user %[8]s (HS256, issuer %[9]s, audience %[10]s,
secret in %[11]s; valid until %[12]s; --demo-user NAME for another user):

  %[13]s

  curl --cacert %[2]s -H 'Authorization: Bearer %[13]s' \
    -X POST %[1]s/v1/registration-tokens

Browser pages on http://localhost:* and http://127.0.0.1:* may call the API
(CORS); examples/web/demo.html is such a page.

`, url, d.CertFile, hostPort(admin), demo.Key, secretFrom, DevAPIKey, secretHint,
		user, DevIDPIssuer, DevIDPAudience, d.IDPSecretFile, now.Add(DevIDPTokenTTL).UTC().Format(time.RFC3339), idToken)
}

// hostPort prints a listener address the way a URL needs it.
func hostPort(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		if ok {
			return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
		}
		return a.String()
	}
	return a.String()
}
