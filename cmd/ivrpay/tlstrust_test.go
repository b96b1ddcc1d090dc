package main

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestMain trusts httptest's TLS certificate (issued for 127.0.0.1) through
// SSL_CERT_FILE, in this test process and in every ivrpay binary it runs:
// production needs https processor endpoints (SPEC §9), so the tests'
// processor doubles serve TLS with that certificate, and a deployment
// trusts a test double's certificate exactly so. At the end it removes the
// binary the tests built.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ivrpay-test-ca")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	certFile := filepath.Join(dir, "httptest.pem")
	err = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	srv.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("SSL_CERT_FILE", certFile)
	code := m.Run()
	os.RemoveAll(dir)
	if builtBinary.dir != "" {
		os.RemoveAll(builtBinary.dir)
	}
	os.Exit(code)
}
