package app

import (
	"errors"
	"fmt"
	"os"

	"github.com/authserver-dev/authserver/internal/signer"
)

// OfflineSecrets resolves the application secrets of the offline commands
// (token, signature, verify) from the first of: inline (--app-secret), the
// file at path (--app-secret-file), or AUTHSERVER_APP_SECRET from getenv.
// Giving both inline and path is an error; errors name where the text came
// from, the way the commands' flags are spelled.
func OfflineSecrets(inline, path string, getenv func(string) string) ([]signer.Secret, error) {
	var text, from string
	switch {
	case inline != "" && path != "":
		return nil, errors.New("give only one of --app-secret and --app-secret-file")
	case inline != "":
		text, from = inline, "--app-secret"
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--app-secret-file: %w", err)
		}
		text, from = string(b), "--app-secret-file"
	case getenv("AUTHSERVER_APP_SECRET") != "":
		text, from = getenv("AUTHSERVER_APP_SECRET"), "AUTHSERVER_APP_SECRET"
	default:
		return nil, errors.New("no application secret: use --app-secret, --app-secret-file or AUTHSERVER_APP_SECRET")
	}
	out, err := signer.ParseSecrets(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return out, nil
}
