package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay/loadtest"
	"github.com/ivrpay/ivrpay/twilio"
)

// runLoadtest is `ivrpay loadtest`: it drives a running deployment with IVR
// charges, each one a fresh payin config and a connector charge as Twilio
// sends it, mixes in retries and concurrent duplicates of the same
// transaction_id, and then checks the deployment's payins for duplicates. It
// exits 1 when any duplicate payin, mismatched replay or lost charge is found.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseURL := fs.String("base-url", "", "URL of the deployment to drive, e.g. http://127.0.0.1:8080; several, comma-separated, are used in turn (server processes sharing one database)")
	apiKey := fs.String("api-key", "", "a platform admin key (group#all) of that deployment")
	rate := fs.Float64("rate", 0, "open loop: start this many calls per second whatever the server's pace")
	concurrency := fs.Int("concurrency", 0, "closed loop: this many callers, each starting its next call when its last one ends (default 8)")
	duration := fs.Duration("duration", 10*time.Second, "how long to start calls")
	maxCalls := fs.Int("max-calls", 100000, "start at most this many calls")
	maxInFlight := fs.Int("max-inflight", 1000, "open loop: calls that may run at once; arrivals beyond it are counted as DROPPED")
	retryFraction := fs.Float64("retry-fraction", 0.10, "fraction of answered charges sent again with the same transaction_id (the answer must be byte-identical)")
	dupFraction := fs.Float64("duplicate-fraction", 0.02, "fraction of charges sent twice at once with the same transaction_id")
	amount := fs.Int64("amount", 1000, "payin config amount in cents (avoid the sandbox's special amounts 5101 to 5110)")
	timeout := fs.Duration("timeout", twilio.DefaultTimeout, "how long each request may take, like Twilio's connector timeout")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	allowProduction := fs.Bool("allow-production", false, "drive a deployment whose ids are not sandbox ids")
	cardTesting := fs.Bool("card-testing", false, "run the normal traffic alone, then again during a card-testing attack (docs/risk.md); report when the attack was stopped and how many normal charges were refused")
	attackCallers := fs.Int("attack-callers", loadtest.DefaultAttack.Callers, "card testing: attacker phone numbers, each placing one call at a time")
	attackInterval := fs.Duration("attack-interval", loadtest.DefaultAttack.Interval, "card testing: each attacker's pause between attempts")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  ivrpay loadtest --base-url URL --api-key ADMIN_KEY [--rate R | --concurrency C] --duration D

Drives a running deployment with IVR charges: with the admin key it finds or creates an ACTIVE merchant,
creates a restricted IVR key (payin:create) and, for each call, a payin config; then it posts the charge to
/vendor/twilio/pay_generic as Twilio does (card 4111 1111 1111 1111). Some charges are retried with the same
transaction_id, some sent twice at once; every replay must be byte-identical. Afterwards it pages through
GET /v1/payins?source=IVR and counts duplicate payins per config and per transaction_id. It prints
throughput, latency percentiles and errors by error_code, and exits 1 on any duplicate or mismatch.
A progress line on stderr is updated once a second.

`)
		fs.PrintDefaults()
	}
	if code := parseCommandLine(fs, args); code >= 0 {
		return code
	}
	usage := usageExit(stderr, "loadtest")
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *baseURL == "":
		return usage("--base-url is required")
	case *apiKey == "":
		return usage("--api-key is required (a platform admin key, e.g. the one `ivrpay serve` prints on a new sandbox)")
	case *rate > 0 && *concurrency > 0:
		return usage("give --rate (open loop) or --concurrency (closed loop), not both")
	case *rate < 0 || *concurrency < 0 || *duration <= 0 || *maxCalls <= 0 || *maxInFlight <= 0 || *timeout <= 0:
		return usage("--rate, --concurrency, --duration, --max-calls, --max-inflight and --timeout must be positive")
	case *retryFraction < 0 || *retryFraction > 1 || *dupFraction < 0 || *dupFraction > 1:
		return usage("--retry-fraction and --duplicate-fraction must be between 0 and 1")
	case *amount <= 0:
		return usage("--amount must be positive")
	}
	baseURLs := strings.Split(*baseURL, ",")
	for _, b := range baseURLs {
		if u, err := url.Parse(b); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usage("--base-url must be http(s) URLs, e.g. http://127.0.0.1:8080")
		}
	}
	o := loadtest.Options{Rate: *rate, Concurrency: *concurrency, Duration: *duration, MaxCalls: *maxCalls, MaxInFlight: *maxInFlight,
		RetryFraction: *retryFraction, DuplicateFraction: *dupFraction, Timeout: *timeout, Progress: stderr}
	if o.Rate == 0 && o.Concurrency == 0 {
		o.Concurrency = 8
	}
	target, err := loadtest.Prepare(ctx, loadtest.NewHTTPClient(o.Connections()), baseURLs, *apiKey, *amount)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay loadtest: %v\n", err)
		return 1
	}
	if !target.Sandbox && !*allowProduction {
		fmt.Fprintf(stderr, "ivrpay loadtest: %s is not a sandbox deployment (merchant %s); refusing without --allow-production\n", *baseURL, target.MerchantID)
		return 1
	}
	if *cardTesting {
		if *attackCallers <= 0 || *attackInterval < 0 {
			return usage("--attack-callers must be positive and --attack-interval not negative")
		}
		a := loadtest.DefaultAttack
		a.Callers, a.Interval = *attackCallers, *attackInterval
		report := loadtest.RunCardTesting(ctx, target, o, a)
		target.AuditReport(ctx, report.Mixed)
		return printReport(stdout, report, *jsonOut)
	}
	report := loadtest.Run(ctx, target, o)
	target.AuditReport(ctx, report)
	return printReport(stdout, report, *jsonOut)
}

// printReport prints a run's report, as JSON or text, and returns the exit code it calls for.
func printReport(stdout io.Writer, report interface {
	Print(io.Writer)
	OK() bool
}, asJSON bool) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	} else {
		report.Print(stdout)
	}
	if !report.OK() {
		return 1
	}
	return 0
}
