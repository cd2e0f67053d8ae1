// Package authserver holds the files of the repository root that the
// program embeds: the OpenAPI contract served at GET /openapi.yaml.
package authserver

import _ "embed"

// OpenAPI is openapi.yaml, the HTTP contract, exactly as in the repository.
//
//go:embed openapi.yaml
var OpenAPI string
