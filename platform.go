package ivrpay

import (
	"context"
	"time"
)

// Platform is a software company that integrates payments for its merchants.
type Platform struct {
	ID            string     `json:"platform_id"`
	Name          string     `json:"name"`
	IVRPayments   bool       `json:"ivr_payments"`
	MinAPIVersion APIVersion `json:"min_api_version"`
	// Risk are the platform's risk thresholds and switches (SPEC §11).
	Risk      RiskSettings `json:"risk"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// Merchant statuses.
const (
	MerchantStatusPending     = "PENDING"
	MerchantStatusActive      = "ACTIVE"
	MerchantStatusSuspended   = "SUSPENDED"
	MerchantStatusDeactivated = "DEACTIVATED"
)

// Merchant is a business under a platform.
type Merchant struct {
	ID         string    `json:"merchant_id"`
	PlatformID string    `json:"platform_id"`
	Name       string    `json:"name"`
	DBAName    string    `json:"dba_name,omitempty"`
	Email      string    `json:"email,omitempty"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// MerchantCreate is the body of POST /v1/merchants.
type MerchantCreate struct {
	Name    string `json:"name"`
	DBAName string `json:"dba_name"`
	Email   string `json:"email"`
}

// Validate checks a merchant creation.
func (m *MerchantCreate) Validate() error {
	if m.Name == "" {
		return FieldErrorf("name", "is required")
	} else if len(m.Name) > 100 {
		return FieldErrorf("name", "must be at most 100 characters")
	} else if len(m.DBAName) > 100 {
		return FieldErrorf("dba_name", "must be at most 100 characters")
	} else if len(m.Email) > 100 {
		return FieldErrorf("email", "must be at most 100 characters")
	}
	for _, f := range []struct{ name, value string }{{"name", m.Name}, {"dba_name", m.DBAName}, {"email", m.Email}} {
		if err := checkFreeText(f.name, f.value); err != nil {
			return err
		}
	}
	return nil
}

// PlatformBootstrap is what creating a platform from the admin CLI returns.
type PlatformBootstrap struct {
	Platform *Platform `json:"platform"`
	AdminKey *APIKey   `json:"admin_key"`
}

// OperatorService holds the operator's commands (ivrpay admin). It is never reachable over HTTP.
type OperatorService interface {
	CreatePlatform(ctx context.Context, name string, enableIVR bool) (*Platform, *APIKey, error)
	SetPlatformIVR(ctx context.Context, platformID string, enabled bool) (*Platform, error)
	SetPlatformMinAPIVersion(ctx context.Context, platformID string, v APIVersion) (*Platform, error)
	ActivateMerchant(ctx context.Context, merchantID string) (*Merchant, error)
	CreateMerchantAsOperator(ctx context.Context, platformID string, m MerchantCreate) (*Merchant, error)
	DisableAPIKey(ctx context.Context, keyID string) (*APIKey, error)
	// Empty reports whether the database holds no platform yet (sandbox bootstrap).
	Empty(ctx context.Context) (bool, error)
}

// AuthService authenticates API key secrets.
type AuthService interface {
	// Authenticate returns the enabled key with this secret, with its Platform
	// loaded, or an EUNAUTHORIZED error.
	Authenticate(ctx context.Context, secret string) (*APIKey, error)
}

// APIKeyService manages API keys for the key in the context.
type APIKeyService interface {
	CreateAPIKey(ctx context.Context, statements []Statement) (*APIKey, error)
	FindAPIKey(ctx context.Context, id string) (*APIKey, error)
	ListAPIKeys(ctx context.Context, page Page) (*List[*APIKey], error)
	SetAPIKeyStatus(ctx context.Context, id, status string) (*APIKey, error)
	DeleteAPIKey(ctx context.Context, id string) error
}

// MerchantService manages merchants for the key in the context.
type MerchantService interface {
	CreateMerchant(ctx context.Context, m MerchantCreate) (*Merchant, error)
	FindMerchant(ctx context.Context, id string) (*Merchant, error)
	ListMerchants(ctx context.Context, page Page) (*List[*Merchant], error)
}
