package main

import (
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

type testFlags struct {
	fs      *flag.FlagSet
	amount  *string
	verbose *bool
	timeout *time.Duration
}

func newTestFlags() testFlags {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return testFlags{fs: fs, amount: fs.String("amount", "", ""), verbose: fs.Bool("verbose", false, ""),
		timeout: fs.Duration("retry-timeout", time.Second, "")}
}

func TestParseFlagsPositionals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		amount     string
		verbose    bool
		positional []string
		wantErr    bool
	}{
		{name: "flags first", args: []string{"--amount", "1.00", "a.xml"}, amount: "1.00", positional: []string{"a.xml"}},
		{name: "flags after the positional", args: []string{"a.xml", "--amount", "1.00", "-verbose"}, amount: "1.00", verbose: true, positional: []string{"a.xml"}},
		{name: "flags between positionals", args: []string{"a", "--amount=2", "b"}, amount: "2", positional: []string{"a", "b"}},
		{name: "-- ends the flags", args: []string{"a", "--", "--amount", "b"}, positional: []string{"a", "--amount", "b"}},
		{name: "a lone dash is positional", args: []string{"-", "--verbose"}, verbose: true, positional: []string{"-"}},
		{name: "nothing", args: nil, positional: []string{}},
		{name: "unknown flag", args: []string{"a", "--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFlags()
			err := parseFlags(f.fs, tt.args)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *f.amount != tt.amount || *f.verbose != tt.verbose || !reflect.DeepEqual(f.fs.Args(), tt.positional) {
				t.Errorf("amount %q verbose %v args %q; want %q %v %q", *f.amount, *f.verbose, f.fs.Args(), tt.amount, tt.verbose, tt.positional)
			}
		})
	}
}

// The environment tests cannot run in parallel: t.Setenv changes the process.
func TestParseFlagsEnvironment(t *testing.T) {
	t.Setenv("IVRPAY_AMOUNT", "5.00")
	t.Setenv("IVRPAY_VERBOSE", "true")
	t.Setenv("IVRPAY_RETRY_TIMEOUT", "3s")
	f := newTestFlags()
	if err := parseFlags(f.fs, []string{"--amount", "7.00"}); err != nil {
		t.Fatal(err)
	}
	if *f.amount != "7.00" {
		t.Errorf("amount = %q; the command line must win over the environment", *f.amount)
	}
	if !*f.verbose || *f.timeout != 3*time.Second {
		t.Errorf("verbose %v, timeout %v; want both from the environment", *f.verbose, *f.timeout)
	}

	t.Setenv("IVRPAY_RETRY_TIMEOUT", "soon")
	if err := parseFlags(newTestFlags().fs, nil); err == nil {
		t.Error("want an error naming IVRPAY_RETRY_TIMEOUT")
	}
	t.Setenv("IVRPAY_RETRY_TIMEOUT", "")
	f = newTestFlags()
	if err := parseFlags(f.fs, nil); err != nil || *f.timeout != time.Second {
		t.Errorf("an empty variable must leave the default: %v, %v", *f.timeout, err)
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	if got := envName("payment-method-config-id"); got != "IVRPAY_PAYMENT_METHOD_CONFIG_ID" {
		t.Errorf("envName = %q", got)
	}
}
