package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/processor/sandbox"
	"github.com/ivrpay/ivrpay/sqlstore"
	"github.com/ivrpay/ivrpay/vault"
	"github.com/ivrpay/ivrpay/voice"
)

// defaultSandboxVaultKey is where sandbox keeps its auto-created vault key.
const defaultSandboxVaultKey = "ivrpay-vault.key"

// storeConfig is what every command that opens the database needs.
type storeConfig struct {
	db           string
	mode         string
	vaultKeyFile string
}

func (c *storeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.db, "db", "ivrpay.db", "SQLite file, or a postgres:// URL to use PostgreSQL")
	fs.StringVar(&c.mode, "mode", "sandbox", "sandbox or production")
	fs.StringVar(&c.vaultKeyFile, "vault-key-file", "", "file holding the base64 32-byte key that encrypts stored card numbers (sandbox default: "+defaultSandboxVaultKey+", created if missing)")
}

// open opens the store and joins the deployment's vault key ring with the
// key file (vault.Keeper); member names a serve process among the ring's
// members ("" for a short-lived command). In production the key file must
// be given explicitly and must exist.
func (c *storeConfig) open(ctx context.Context, logger *slog.Logger, stderr io.Writer, member string) (*sqlstore.Store, *vault.Keeper, ivrpay.Mode, error) {
	mode, err := ivrpay.ParseMode(c.mode)
	if err != nil {
		return nil, nil, "", err
	}
	path := c.vaultKeyFile
	if mode == ivrpay.ModeProduction {
		if path == "" {
			return nil, nil, "", errors.New("production mode needs --vault-key-file: a file with 32 random bytes, base64-encoded (head -c 32 /dev/urandom | base64 > vault.key; chmod 600 vault.key)")
		}
		m, err := vault.KeyFileMode(path)
		if err != nil {
			return nil, nil, "", err
		}
		if m == string(ivrpay.ModeSandbox) {
			return nil, nil, "", fmt.Errorf("--vault-key-file %s was created by a sandbox deployment; production needs a key of its own (head -c 32 /dev/urandom | base64 > vault.key; chmod 600 vault.key)", path)
		}
	} else {
		if path == "" {
			path = defaultSandboxVaultKey
		}
		if m, _ := vault.KeyFileMode(path); m == string(ivrpay.ModeProduction) {
			return nil, nil, "", fmt.Errorf("--vault-key-file %s is a production key; a sandbox needs a key of its own", path)
		}
	}
	s, err := sqlstore.Open(ctx, c.db, sqlstore.Options{Mode: mode, Logger: logger})
	if mm := (*sqlstore.ModeMismatchError)(nil); errors.As(err, &mm) {
		return nil, nil, "", fmt.Errorf("--db: %v", mm)
	}
	if err != nil {
		return nil, nil, "", err
	}
	keeper, created, err := vault.OpenKeeper(ctx, s, path, vault.KeeperOptions{Create: mode == ivrpay.ModeSandbox, Member: member, Logger: logger})
	if err != nil {
		s.Close()
		return nil, nil, "", err
	}
	if created {
		fmt.Fprintf(stderr, "ivrpay: created sandbox vault key %s (mode 0600)\n", path)
	}
	return s, keeper, mode, nil
}

func newLogger(mode string, w io.Writer) *slog.Logger {
	if mode == string(ivrpay.ModeProduction) {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// paymentsConfig is what the payments service takes from serve's flags.
type paymentsConfig struct {
	reconcileAfter time.Duration
	// sandboxLatency delays every answer of the built-in sandbox processor.
	sandboxLatency time.Duration
	// risk counts the risk rules' refusals and blocks (nil: not counted).
	risk payments.RiskMetrics
	// processorCheckAfter: serve --processor-check-after.
	processorCheckAfter time.Duration
}

// newPayments is the payments service over store, with the deployment's
// processor accounts; in sandbox, merchants without one use the built-in
// sandbox processor.
func newPayments(store *sqlstore.Store, v ivrpay.Vault, mode ivrpay.Mode, logger *slog.Logger, pc paymentsConfig, stderr io.Writer) *payments.Service {
	router := &payments.AccountRouter{Store: store, Vault: v, Open: openProcessor(mode)}
	opts := payments.Options{Mode: mode, Logger: logger, ConnectorLease: testConnectorLease(mode, stderr), ReconcileAfter: pc.reconcileAfter,
		RiskMetrics: pc.risk, ProcessorCheckAfter: pc.processorCheckAfter, HoldProcessorEvents: testHoldProcessorEvents(mode, stderr)}
	if mode == ivrpay.ModeSandbox {
		router.Sandbox = &sandbox.Processor{Latency: pc.sandboxLatency}
		// The built-in processor confirms through the inbox, as a real one does.
		opts.SandboxConfirmations, opts.SandboxDisputes = sandbox.Confirmations, sandbox.DisputeEvents
	}
	return payments.New(store, v, router, opts)
}

func newAPIServer(s *sqlstore.Store, pay *payments.Service, logger *slog.Logger) *httpapi.Server {
	return &httpapi.Server{Logger: logger, Services: httpapi.NewServices(s, pay)}
}

// newHTTPServer sets every server timeout deliberately: headers must come
// quickly, bodies are small, and a write may wait for a slow processor
// (the sandbox's 12-second answer) but no longer.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 40 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sc storeConfig
	sc.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	baseURL := fs.String("base-url", "", "public URL of this deployment, used in printed connector settings (default http://ADDR)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "TLS key file")
	behindProxy := fs.Bool("behind-proxy", false, "TLS is terminated by a proxy in front of this server")
	settleAfter := fs.Duration("sandbox-settle-after", 60*time.Second, "sandbox only: how long the built-in sandbox processor's payins and refunds stay PROCESSING before it confirms them (by event; real accounts settle by their processor's events)")
	processorCheckAfter := fs.Duration("processor-check-after", payments.DefaultProcessorCheckAfter, "how long a real account's payin or refund stays PROCESSING without a processor event before ivrpay looks it up at the processor (Stripe), then again with back-off")
	sandboxLatency := fs.Duration("sandbox-processor-latency", 0, "sandbox only: the built-in sandbox processor answers after this long, like a real acquirer's round trip (for load tests)")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics on this separate address instead of the main listener (in production, the only place it is served)")
	reconcileAfter := fs.Duration("reconcile-after", payments.DefaultReconcileAfter, "how long an unknown processor outcome waits before the reconciler asks the processor")
	sessionSecretFile := fs.String("session-secret-file", "", "file holding a secret (at least 32 random bytes) every process of the deployment shares, for portal sign-in forms and the authentication limiter (default: derived from the vault key)")
	drainDelay := fs.Duration("drain-delay", 0, "on SIGTERM, keep serving this long while /health answers 503, so that the load balancer stops sending requests before the listener closes")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ivrpay serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *processorCheckAfter < time.Second {
		fmt.Fprintf(stderr, "ivrpay serve: --processor-check-after must be at least 1s, not %s\n", *processorCheckAfter)
		return 2
	}
	if *settleAfter < 0 {
		fmt.Fprintf(stderr, "ivrpay serve: --sandbox-settle-after must not be negative, not %s\n", *settleAfter)
		return 2
	}
	if sc.mode == string(ivrpay.ModeProduction) && *sandboxLatency != 0 {
		fmt.Fprintln(stderr, "ivrpay serve: --sandbox-processor-latency is a sandbox setting; production has no sandbox processor")
		return 2
	}
	if sc.mode == string(ivrpay.ModeProduction) {
		if err := checkProduction(*baseURL, *tlsCert, *tlsKey, *behindProxy, sc.vaultKeyFile); err != nil {
			fmt.Fprintf(stderr, "ivrpay serve: refusing to start in production: %v\n", err)
			return 1
		}
	}
	logger := newLogger(sc.mode, stderr)
	store, v, mode, err := sc.open(ctx, logger, stderr, vault.MemberName())
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay serve: %v\n", err)
		return 1
	}
	defer store.Close()
	// The key ring is kept in step until the last request in flight is
	// over, after SIGTERM too, and the process then leaves its membership.
	ringCtx, stopRing := context.WithCancel(context.WithoutCancel(ctx))
	ringDone := make(chan struct{})
	go func() {
		defer close(ringDone)
		v.Run(ringCtx)
	}()
	defer func() {
		stopRing()
		<-ringDone
	}()
	procs := runtime.GOMAXPROCS(0)
	if store.Engine() == sqlstore.EngineSQLite {
		procs = raiseProcs(os.Getenv("GOMAXPROCS"), logger)
	}
	keepHeapGoal(os.Getenv("GOGC"))
	if mode == ivrpay.ModeProduction {
		if n, err := store.CountProcessorAccounts(ctx); err != nil || n == 0 {
			if err == nil {
				err = errNoProcessorAccount
			}
			fmt.Fprintf(stderr, "ivrpay serve: refusing to start in production: %v\n", err)
			return 1
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay serve: %v\n", err)
		return 1
	}
	base := strings.TrimRight(*baseURL, "/")
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	if mode == ivrpay.ModeSandbox {
		if err := bootstrapSandbox(ctx, store, base, stdout); err != nil {
			fmt.Fprintf(stderr, "ivrpay serve: sandbox bootstrap: %v\n", err)
			return 1
		}
	}
	risk := newRiskMetrics()
	pay := newPayments(store, v, mode, logger, paymentsConfig{reconcileAfter: *reconcileAfter, sandboxLatency: *sandboxLatency, risk: risk,
		processorCheckAfter: *processorCheckAfter}, stderr)
	api := newAPIServer(store, pay, logger)
	// The processor event endpoints check each account's events secret and
	// hand what they verify to the inbox (SPEC §4.2).
	api.EventSecrets, api.ProcessorEvents = &payments.AccountRouter{Store: store, Vault: v}, pay
	secret, err := sharedSecret(*sessionSecretFile, v, mode)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay serve: %v\n", err)
		return 1
	}
	// Failure counts and the known-good list live in the database, so every
	// process enforces one limit and a restart forgets nothing.
	api.Limiter, api.BehindProxy = httpapi.NewSharedAuthLimiter(store, secret), *behindProxy
	api.Limiter.Audit = store
	// The blocks in force are read before the first request, not on Run's
	// first pass: a restart must not let a blocked address guess again, or
	// a key new to it in, while that pass is under way.
	if err := api.Limiter.Refresh(ctx); err != nil {
		fmt.Fprintf(stderr, "ivrpay serve: reading the authentication blocks: %v\n", err)
		return 1
	}
	// The limiter runs until the server has drained, so that the failures of
	// the last requests reach the audit trail (Run writes them as it stops).
	limiterCtx, stopLimiter := context.WithCancel(context.WithoutCancel(ctx))
	limiterDone := make(chan struct{})
	go func() {
		defer close(limiterDone)
		api.Limiter.Run(limiterCtx, logger)
	}()
	defer func() {
		stopLimiter()
		<-limiterDone
	}()
	api.Portal = newPortal(store, pay, logger, mode, base, ln.Addr(), *tlsCert != "", *behindProxy, api.Limiter, secret, v)
	var metricsHandler http.Handler
	api.Metrics, metricsHandler = newMetrics(store, risk.refused, risk.blocked)
	if *metricsAddr == "" {
		// Production serves /metrics only on its own listener (SPEC §9):
		// tenant-wide counts are not for the public address.
		if mode != ivrpay.ModeProduction {
			api.MetricsHandler = metricsHandler
		}
	} else {
		metricsSrv := newHTTPServer(metricsHandler)
		metricsSrv.Addr = *metricsAddr
		go func() {
			if err := metricsSrv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				logger.Error("metrics listener stopped", "error", err)
			}
		}()
		defer metricsSrv.Close()
	}
	drain := &drainState{}
	srv := newHTTPServer(drain.wrap(sealing(v, api.Handler())))
	workers := startWorkers(store, pay, logger, mode, *settleAfter)
	defer workers.stop()
	logger.Info("listening", "addr", ln.Addr().String(), "mode", string(mode), "engine", store.Engine(), "base_url", base, "gomaxprocs", procs)
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "ivrpay serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	return drain.shutdown(logger, srv, workers, *drainDelay)
}

// sealing marks every request as work that may seal with the vault's
// current key (vault.Keeper.Begin), so that a rotation waits for the
// requests begun under the old key before it re-encrypts. The background
// workers seal nothing: the reconciler reads stored cards, it stores none.
func sealing(k *vault.Keeper, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer k.Begin()()
		h.ServeHTTP(w, r)
	})
}

// shutdownTimeout bounds the wait for in-flight requests after SIGTERM. A
// connector call is answered within Twilio's 10 s (the processor call is cut
// at 6 s), so every call in flight finishes well inside it.
const shutdownTimeout = 30 * time.Second

// drainState is what a SIGTERM changes: /health answers 503 from then on.
type drainState struct{ draining atomic.Bool }

// wrap answers GET /health with 503 while draining, so that a load
// balancer's health check takes the process out of rotation; every other
// request is served as usual until the listener closes.
func (d *drainState) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() && r.URL.Path == "/health" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("DRAINING"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// shutdown drains the process after SIGTERM: /health answers 503 for
// delay while requests are still served, then the listener closes (no new
// connections; idle keep-alive connections are closed), the requests in
// flight run to their end, and the background workers stop after the pass
// they are in. It returns the exit code: 0 when everything in flight
// finished within shutdownTimeout.
func (d *drainState) shutdown(logger *slog.Logger, srv *http.Server, workers *backgroundWorkers, delay time.Duration) int {
	d.draining.Store(true)
	logger.Info("draining: /health answers 503", "drain_delay", delay.String())
	time.Sleep(delay)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		workers.stop()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	code := 0
	if err := srv.Shutdown(ctx); err != nil {
		logger.Error("requests still in flight at the shutdown timeout", "error", err)
		srv.Close()
		code = 1
	}
	<-stopped
	logger.Info("stopped", "exit_code", code)
	return code
}

// checkProduction refuses the settings that are fine for a sandbox but not
// for card data: each refusal is one clear line.
func checkProduction(baseURL, tlsCert, tlsKey string, behindProxy bool, vaultKeyFile string) error {
	if vaultKeyFile == "" {
		return errors.New("--vault-key-file is required (32 random bytes, base64-encoded; never the auto-created sandbox key)")
	}
	if strings.HasSuffix(vaultKeyFile, defaultSandboxVaultKey) {
		return fmt.Errorf("--vault-key-file %s is the auto-created sandbox key; generate a production key of its own", vaultKeyFile)
	}
	u, err := url.Parse(baseURL)
	if baseURL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		return errors.New("--base-url must be the public https:// URL of this deployment (Twilio posts card data to it)")
	}
	if (tlsCert == "") != (tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if tlsCert == "" && !behindProxy {
		return errors.New("plain HTTP is refused: give --tls-cert and --tls-key, or --behind-proxy when a proxy terminates TLS")
	}
	if tlsKey != "" {
		f, err := openSecretFile("--tls-key", tlsKey, ivrpay.ModeProduction)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// bootstrapSandbox creates, on an empty database, one platform with IVR
// enabled, an ACTIVE merchant, an admin key and an IVR key, and prints them
// once with the connector settings to paste into Twilio, Telnyx and SignalWire.
func bootstrapSandbox(ctx context.Context, store *sqlstore.Store, baseURL string, stdout io.Writer) error {
	empty, err := store.Empty(ctx)
	if err != nil || !empty {
		return err
	}
	platform, admin, err := store.CreatePlatform(ctx, "Sandbox platform", true)
	if err != nil {
		return err
	}
	merchant, err := store.CreateMerchantAsOperator(ctx, platform.ID, ivrpay.MerchantCreate{Name: "Sandbox merchant"})
	if err != nil {
		return err
	}
	ivrKey, err := store.CreateAPIKey(ivrpay.NewContextWithPrincipal(ctx, admin), ivrKeyStatements(platform.ID, "payin:create", "payment_method:create"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `ivrpay sandbox bootstrap (printed once; the secrets are not stored and cannot be shown again)

  platform_id     %s   (IVR payments enabled)
  merchant_id     %s   (ACTIVE)
  admin api_key   %s   (group#all: create merchants, payin configs, keys)
  ivr api_key     %s   (payin:create + payment_method:create only)

Twilio Generic Pay Connector settings (Console → Voice → Pay Connectors → Generic Pay Connector):
  Unique Name     ivrpay_sandbox
  Username        api_key
  Password        %s
  Endpoint URL    %s%s

Telnyx Pay connector (type generic; TeXML <Pay paymentConnector="ivrpay_sandbox">):
  Endpoint URL    %s%s
  Authentication  basic: username api_key, password the ivr api_key

SignalWire (cXML <Pay paymentConnectorUrl>, SWML pay.payment_connector_url):
  URL             %s

`, platform.ID, merchant.ID, admin.Secret, ivrKey.Secret, ivrKey.Secret, baseURL, httpapi.ConnectorPath,
		baseURL, httpapi.TelnyxConnectorPath, voice.SignalWireConnectorURL(baseURL, ivrKey.Secret))
	return nil
}

// ivrKeyStatements are the guide's restricted IVR key statements.
func ivrKeyStatements(platformID string, permissions ...string) []ivrpay.Statement {
	return []ivrpay.Statement{{Permissions: permissions, Constraints: ivrpay.Constraints{Platform: &ivrpay.PlatformConstraint{PlatformID: platformID}}}}
}
