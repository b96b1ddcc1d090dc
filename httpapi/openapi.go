package httpapi

import (
	_ "embed"
	"net/http"
	"slices"
)

// openAPIDocument is the OpenAPI 3.1 document of the whole HTTP API: every
// /v1 operation, the Twilio connector endpoint, /health and itself. The
// contract test (contract_test.go) drives every operation against a real
// server and validates each request and answer against it, so it cannot
// drift from the handlers unnoticed.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns a copy of the OpenAPI document served at GET /openapi.json.
func OpenAPIDocument() []byte { return slices.Clone(openAPIDocument) }

// handleOpenAPI serves the OpenAPI document. It needs no authentication: it
// describes the API, it holds no data.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDocument)
}
