package main

import (
	"log/slog"
	"net"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/portal"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// newPortal builds the /portal handler. Its connector fields show baseURL;
// its test call reaches this server's own listener over loopback (or, when the
// server speaks TLS, whose certificate names the public host, the base URL).
// Failed sign-ins count in the REST API's limiter, per client address. The
// sign-in form's tokens are keyed by the secret every process shares, and
// sessions live in the database (their key secrets encrypted by the vault).
func newPortal(store *sqlstore.Store, pay *payments.Service, logger *slog.Logger, mode ivrpay.Mode, baseURL string, addr net.Addr, tls, behindProxy bool, limiter portal.Limiter, secret []byte, v ivrpay.Vault) *portal.Portal {
	connectorURL := baseURL
	if !tls {
		connectorURL = portal.LoopbackURL(addr, false)
	}
	return portal.New(portal.Options{
		Services: portal.Services{Auth: store, APIKeys: store, Merchants: store, PayinConfigs: store,
			PaymentMethodConfigs: store, Payins: pay, PaymentMethods: store, Webhooks: store, Lifecycle: pay, Sessions: store, Audit: store,
			Risk: store, Chargebacks: store},
		Mode: mode, BaseURL: baseURL, ConnectorURL: connectorURL, BehindProxy: behindProxy, Limiter: limiter, Logger: logger,
		SignInSecret: secret, Sessions: store, SessionVault: v,
	})
}
