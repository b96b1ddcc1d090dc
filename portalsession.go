package ivrpay

import "time"

// PortalSession is a signed-in portal session as stored where every server
// process reads it. The browser's cookie holds a random session id; the
// store holds only its SHA-256 (IDHash), so a copy of the table opens no
// session. The signed-in API key's secret is stored encrypted by the vault
// (KeySecret), because the portal authenticates it again on every request:
// a key disabled or deleted since sign-in ends its sessions on every process.
type PortalSession struct {
	IDHash    string
	CSRF      string
	KeySecret string // vault ciphertext
	Created   time.Time
	Seen      time.Time
	// RecentConfigs are the config ids the session created or opened, newest first.
	RecentConfigs []string
}
