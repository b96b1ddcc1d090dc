package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/vault"
)

const adminUsage = `Usage: ivrpay admin [--db FILE|URL] [--mode sandbox|production] [--vault-key-file F] COMMAND
  platform create --name N [--enable-ivr]    prints JSON with platform_id and an admin api_key
  platform enable-ivr ID | platform disable-ivr ID
  platform set-min-api-version ID VERSION    (2023-01-01, 2023-12-01 or 2024-10-16)
  merchant activate ID
  key disable ID
  vault rotate                               re-encrypts every stored card number under a new key
`

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	var sc storeConfig
	sc.register(fs)
	name := fs.String("name", "", "platform name (platform create)")
	enableIVR := fs.Bool("enable-ivr", false, "enable IVR payments on the new platform (platform create)")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	cmd := strings.Join(fs.Args(), " ")
	arg := func(i int) string { return fs.Arg(i) }
	store, _, _, err := sc.open(ctx, newLogger(sc.mode, io.Discard), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ivrpay admin: %v\n", err)
		return 1
	}
	defer store.Close()
	var out any
	switch {
	case fs.NArg() == 2 && arg(0) == "platform" && arg(1) == "create":
		p, key, err := store.CreatePlatform(ctx, *name, *enableIVR)
		if err != nil {
			return adminFail(stderr, err)
		}
		out = map[string]any{"platform_id": p.ID, "name": p.Name, "ivr_payments": p.IVRPayments,
			"min_api_version": p.MinAPIVersion, "api_key_id": key.ID, "api_key": key.Secret}
	case fs.NArg() == 3 && arg(0) == "platform" && (arg(1) == "enable-ivr" || arg(1) == "disable-ivr"):
		out, err = store.SetPlatformIVR(ctx, arg(2), arg(1) == "enable-ivr")
	case fs.NArg() == 4 && arg(0) == "platform" && arg(1) == "set-min-api-version":
		out, err = store.SetPlatformMinAPIVersion(ctx, arg(2), ivrpay.APIVersion(arg(3)))
	case fs.NArg() == 3 && arg(0) == "merchant" && arg(1) == "activate":
		out, err = store.ActivateMerchant(ctx, arg(2))
	case fs.NArg() == 3 && arg(0) == "key" && arg(1) == "disable":
		out, err = store.DisableAPIKey(ctx, arg(2))
	case cmd == "vault rotate":
		out, err = rotateVault(ctx, sc, store)
	default:
		fmt.Fprintf(stderr, "ivrpay admin: unknown command %q\n\n%s", cmd, adminUsage)
		return 2
	}
	if err != nil {
		return adminFail(stderr, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}

func adminFail(stderr io.Writer, err error) int {
	if ivrpay.ErrorCode(err) == ivrpay.EINTERNAL {
		fmt.Fprintf(stderr, "ivrpay admin: %v\n", err)
	} else {
		fmt.Fprintf(stderr, "ivrpay admin: %s\n", ivrpay.ErrorMessage(err))
	}
	return 1
}

// rotateVault writes a new key beside the current one, re-encrypts every
// stored PAN (and recomputes its fingerprint) in one transaction, then makes
// the new key current and keeps the old one as a retired file. A rotation
// cut short resumes where it stopped: the vault reads the .next key too.
func rotateVault(ctx context.Context, sc storeConfig, store interface {
	ReencryptPANs(ctx context.Context, v ivrpay.Vault) (int, error)
}) (any, error) {
	path := sc.vaultKeyFile
	if path == "" {
		path = defaultSandboxVaultKey
	}
	keyring, err := vault.BeginRotation(path)
	if err != nil {
		return nil, err
	}
	n, err := store.ReencryptPANs(ctx, keyring)
	if err != nil {
		return nil, err
	}
	if err := vault.FinishRotation(path, time.Now()); err != nil {
		return nil, err
	}
	return map[string]any{"reencrypted_payment_methods": n, "key_id": keyring.KeyID(), "vault_key_file": path,
		"note": "restart every ivrpay serve process so that it loads the new key"}, nil
}
