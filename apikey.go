package ivrpay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Resources and actions that permissions are made of ("resource:action").
var (
	Resources = []string{"api_key", "merchant", "payin_config", "payin", "payment_method_config",
		"payment_method", "refund", "webhook_endpoint", "platform", "session", "chargeback"}
	Actions = []string{"create", "read", "update", "delete"}
)

// PermissionAll grants every permission.
const PermissionAll = "group#all"

// PermissionPaymentComponent is Rainforest's group for a browser payment
// form: read a config, make the payin or store the card, read the result.
const PermissionPaymentComponent = "group#payment_component"

// PermissionGroups lists the members of each group other than group#all.
var PermissionGroups = map[string][]string{
	PermissionPaymentComponent: {"payin_config:read", "payin:create", "payin:read",
		"payment_method_config:read", "payment_method:create", "payment_method:read"},
}

// API key statuses.
const (
	APIKeyStatusEnabled  = "ENABLED"
	APIKeyStatusDisabled = "DISABLED"
)

// APIKey is a secret that belongs to one platform and carries statements.
// Only a hash of the secret is stored; Secret is set once, on creation. The
// Statements of an authenticated key may be shared with other requests'
// copies of the key: replace them, never modify them in place.
type APIKey struct {
	ID           string      `json:"api_key_id"`
	PlatformID   string      `json:"platform_id"`
	Secret       string      `json:"api_key,omitempty"`
	MaskedSecret string      `json:"masked_api_key"`
	Statements   []Statement `json:"statements"`
	Status       string      `json:"status"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`

	// Platform is the key's platform, loaded on authentication.
	Platform *Platform `json:"-"`
	// Session is set when the principal is a session key (ID is then the
	// session's ses_ id): it authenticates like an API key but may not
	// create or change keys, nor create sessions.
	Session bool `json:"-"`
}

// Statement grants permissions on objects that match every constraint.
type Statement struct {
	Permissions []string    `json:"permissions"`
	Constraints Constraints `json:"constraints"`
}

// Constraints restrict a statement to one platform and, optionally, one
// merchant, one payin config or one payment method config.
type Constraints struct {
	Platform            *PlatformConstraint            `json:"platform,omitempty"`
	Merchant            *MerchantConstraint            `json:"merchant,omitempty"`
	PayinConfig         *PayinConfigConstraint         `json:"payin_config,omitempty"`
	PaymentMethodConfig *PaymentMethodConfigConstraint `json:"payment_method_config,omitempty"`
}

// PlatformConstraint matches objects owned by one platform.
type PlatformConstraint struct {
	PlatformID string `json:"platform_id"`
}

// MerchantConstraint matches objects of one merchant, never platform-level objects.
type MerchantConstraint struct {
	MerchantID string `json:"merchant_id"`
}

// PayinConfigConstraint matches one payin config and the payins made from it.
type PayinConfigConstraint struct {
	PayinConfigID string `json:"payin_config_id"`
}

// PaymentMethodConfigConstraint matches one payment method config and the
// payment method stored from it.
type PaymentMethodConfigConstraint struct {
	PaymentMethodConfigID string `json:"payment_method_config_id"`
}

// Object is what a permission is checked against: the owning platform, the
// merchant for objects that have one (empty for platform-level objects), the
// payin config or payment method config the object is or was made from
// (empty for objects that have none), and, for payins and payment methods,
// the credential they were made through.
type Object struct {
	PlatformID            string
	MerchantID            string
	PayinConfigID         string
	PaymentMethodConfigID string
	// CreatedBy is the API key or session id a payin or payment method was
	// made through; empty for other objects and for those made before
	// ivrpay recorded it.
	CreatedBy string
}

// Allows reports whether key grants permission on obj: deny by default, OR
// across statements, AND across a statement's constraints. A permission a
// statement holds only through group#payment_component is a payer's
// browser's: on payins and payment methods it reaches only those made
// through key itself (SPEC §1.1).
func Allows(key *APIKey, permission string, obj Object) bool {
	if key == nil {
		return false
	}
	for _, s := range key.Statements {
		g := s.grant(permission)
		if g == grantNone || !s.Constraints.match(obj) {
			continue
		}
		if g == grantComponent && madeThroughCredential(permission) && (obj.CreatedBy == "" || obj.CreatedBy != key.ID) {
			continue
		}
		return true
	}
	return false
}

// grantKind says how a statement holds a permission.
type grantKind int

const (
	grantNone grantKind = iota
	// grantComponent: only through group#payment_component, a payer's browser's grant.
	grantComponent
	// grantFull: by name, through group#all or another group.
	grantFull
)

// grant says how s holds permission: fully, only through
// group#payment_component, or not at all.
func (s Statement) grant(permission string) grantKind {
	g := grantNone
	for _, p := range s.Permissions {
		switch {
		case p == PermissionAll || p == permission:
			return grantFull
		case slices.Contains(PermissionGroups[p], permission):
			if p != PermissionPaymentComponent {
				return grantFull
			}
			g = grantComponent
		}
	}
	return g
}

// madeThroughCredential reports whether a browser's (group#payment_component)
// grant of permission reaches only the objects made through the credential:
// reading payins and payment methods. Reading a config needs its id, which
// the platform hands the browser; making a payin or storing a card is what
// the form is for (charging a stored card also needs payment_method:read).
func madeThroughCredential(permission string) bool {
	return permission == "payin:read" || permission == "payment_method:read"
}

// payerBound reports whether a refusal of permission on obj (of key's
// platform) is to answer as if obj did not exist: key holds permission only
// through group#payment_component, or such a grant matches obj but for who
// made it. A payer's browser learns nothing of other payers' objects.
func (k *APIKey) payerBound(permission string, obj Object) bool {
	component, full := false, false
	for _, s := range k.Statements {
		switch s.grant(permission) {
		case grantComponent:
			if s.Constraints.match(obj) {
				return true
			}
			component = true
		case grantFull:
			full = true
		}
	}
	return component && !full
}

func (c Constraints) match(obj Object) bool {
	if c.Platform != nil && c.Platform.PlatformID != obj.PlatformID {
		return false
	}
	// A merchant constraint never matches a platform-level object, and an
	// object constraint never matches an object that was not made from a
	// config (a merchant, an API key, a webhook endpoint).
	if c.Merchant != nil && (obj.MerchantID == "" || c.Merchant.MerchantID != obj.MerchantID) {
		return false
	}
	if c.PayinConfig != nil && (obj.PayinConfigID == "" || c.PayinConfig.PayinConfigID != obj.PayinConfigID) {
		return false
	}
	if c.PaymentMethodConfig != nil && (obj.PaymentMethodConfigID == "" || c.PaymentMethodConfig.PaymentMethodConfigID != obj.PaymentMethodConfigID) {
		return false
	}
	return true
}

// narrowed reports whether the constraints name an object (a config), not only a platform or merchant.
func (c Constraints) narrowed() bool { return c.PayinConfig != nil || c.PaymentMethodConfig != nil }

// Authorize returns nil if key grants permission on obj, and otherwise an
// EFORBIDDEN error that names the missing permission.
func Authorize(key *APIKey, permission string, obj Object) error {
	if key == nil {
		return Errorf(EUNAUTHORIZED, "Unauthorized.")
	}
	if Allows(key, permission, obj) {
		return nil
	}
	switch {
	case obj.PayinConfigID != "" && ScopeFor(key, permission).narrowed:
		return Errorf(EFORBIDDEN, "missing permission %s for payin config %s", permission, obj.PayinConfigID)
	case obj.PaymentMethodConfigID != "" && ScopeFor(key, permission).narrowed:
		return Errorf(EFORBIDDEN, "missing permission %s for payment method config %s", permission, obj.PaymentMethodConfigID)
	}
	if obj.MerchantID != "" {
		return Errorf(EFORBIDDEN, "missing permission %s for merchant %s", permission, obj.MerchantID)
	}
	return Errorf(EFORBIDDEN, "missing permission %s for platform %s", permission, obj.PlatformID)
}

// AuthorizeObject is Authorize for an object that may belong to another
// platform: that answers 404 (its existence is not revealed), and an object
// of the key's platform that its statements exclude answers 403, naming the
// permission, except to a payer's browser when the object is beyond its
// reach (Hidden), which is answered 404 as well. kind names the object in
// the 404 ("payin", "payment method", "API key", …).
func AuthorizeObject(key *APIKey, permission, kind, id string, obj Object) error {
	if key == nil {
		return Errorf(EUNAUTHORIZED, "Unauthorized.")
	}
	if Hidden(key, permission, kind, obj) {
		return Errorf(ENOTFOUND, "%s %s not found", kind, id)
	}
	return Authorize(key, permission, obj)
}

// Hidden reports whether key, asking for permission on obj (an object of
// the given kind), is to be answered as if obj did not exist: obj is another
// platform's, or key is refused and obj is beyond a payer's browser's reach
// (SPEC §1.1). Reach is decided before permissions, so a browser's refusal
// never depends on, nor names, an object it cannot see: key holds
// permission only through group#payment_component (or such a grant matches
// obj but for who made it), or every grant of key comes from the group and
// it may not read obj (its other refusals, a capture of its own payin, stay
// 403 naming the permission). Ordinary keys keep their 403.
func Hidden(key *APIKey, permission, kind string, obj Object) bool {
	if key == nil || obj.PlatformID != key.PlatformID {
		return true
	}
	if Allows(key, permission, obj) {
		return false
	}
	return key.payerBound(permission, obj) || (key.payerOnly() && !Allows(key, readPermission(kind), obj))
}

// payerOnly reports whether every grant of k comes from
// group#payment_component: k is a payer's browser credential throughout.
func (k *APIKey) payerOnly() bool {
	for _, s := range k.Statements {
		for _, p := range s.Permissions {
			if p != PermissionPaymentComponent {
				return false
			}
		}
	}
	return len(k.Statements) > 0
}

// readPermission is the permission that reads an object of kind ("payment
// method" → payment_method:read, "API key" → api_key:read).
func readPermission(kind string) string {
	return strings.ReplaceAll(strings.ToLower(kind), " ", "_") + ":read"
}

// ReadScope says which objects of its platform a key may list with a
// permission: all of them, those that match one of some filters, or none.
type ReadScope struct {
	All bool
	// Filters: an object may be listed when it matches one of them.
	Filters []ObjectFilter
	// held: the key holds the permission on its platform, though perhaps
	// for nothing a list shows (a browser's config read without a config
	// constraint): its lists are empty rather than refused.
	held bool
	// narrowed: some filter names a config.
	narrowed bool
}

// ObjectFilter matches objects whose non-empty fields all equal the object's.
type ObjectFilter struct {
	MerchantID            string
	PayinConfigID         string
	PaymentMethodConfigID string
	// CreatedBy: made through this API key or session.
	CreatedBy string
}

// String describes the filter for people: "merchant mid_… and payin config cfg_…".
func (f ObjectFilter) String() string {
	var parts []string
	if f.MerchantID != "" {
		parts = append(parts, "merchant "+f.MerchantID)
	}
	if f.PayinConfigID != "" {
		parts = append(parts, "payin config "+f.PayinConfigID)
	}
	if f.PaymentMethodConfigID != "" {
		parts = append(parts, "payment method config "+f.PaymentMethodConfigID)
	}
	if f.CreatedBy != "" {
		parts = append(parts, "made through "+f.CreatedBy)
	}
	return strings.Join(parts, " and ")
}

// Empty reports whether the key does not hold the permission at all.
func (s ReadScope) Empty() bool { return !s.All && len(s.Filters) == 0 && !s.held }

// ScopeFor computes the read scope of key for permission on its own platform.
// List endpoints use it to return only objects the key may read. A grant
// through group#payment_component alone lists the payins and payment
// methods made through key, and the configs its constraints name.
func ScopeFor(key *APIKey, permission string) ReadScope {
	var scope ReadScope
	for _, s := range key.Statements {
		g := s.grant(permission)
		if g == grantNone {
			continue
		}
		c := s.Constraints
		if c.Platform != nil && c.Platform.PlatformID != key.PlatformID {
			continue
		}
		scope.held = true
		f := ObjectFilter{}
		switch {
		case g == grantComponent && madeThroughCredential(permission):
			f.CreatedBy = key.ID
		case g == grantComponent && !c.narrowed():
			continue // a config it may read by id, but its statement names none to list
		case c.Merchant == nil && !c.narrowed():
			return ReadScope{All: true, held: true}
		}
		if c.Merchant != nil {
			f.MerchantID = c.Merchant.MerchantID
		}
		if c.PayinConfig != nil {
			f.PayinConfigID = c.PayinConfig.PayinConfigID
		}
		if c.PaymentMethodConfig != nil {
			f.PaymentMethodConfigID = c.PaymentMethodConfig.PaymentMethodConfigID
		}
		scope.narrowed = scope.narrowed || c.narrowed()
		if !slices.Contains(scope.Filters, f) {
			scope.Filters = append(scope.Filters, f)
		}
	}
	return scope
}

// ParseStatements decodes and validates a statements array strictly. Unknown
// fields, unknown constraint kinds, unknown permissions and malformed
// statements are refused with an EINVALID error naming the field
// ("statements[0].permissions[1]"). Every statement must be constrained to a platform.
func ParseStatements(raw json.RawMessage) ([]Statement, error) {
	return ParseStatementsFor(raw, "")
}

// ParseStatementsFor is ParseStatements where a statement that names no
// platform constraint gets defaultPlatformID's (sessions: OpenEMR sends only
// a merchant constraint). With an empty defaultPlatformID the constraint is required.
func ParseStatementsFor(raw json.RawMessage, defaultPlatformID string) ([]Statement, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, FieldErrorf("statements", "is required: a non-empty array of statements")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, FieldErrorf("statements", "must be an array of statements")
	}
	if err := checkJSONNUL("statements", raw); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, FieldErrorf("statements", "must contain at least one statement")
	}
	if len(items) > 50 {
		return nil, FieldErrorf("statements", "must contain at most 50 statements")
	}
	out := make([]Statement, 0, len(items))
	for i, item := range items {
		st, err := parseStatement(fmt.Sprintf("statements[%d]", i), item, defaultPlatformID)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func parseStatement(field string, raw json.RawMessage, defaultPlatformID string) (Statement, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Statement{}, FieldErrorf(field, "must be an object with permissions and constraints")
	}
	for k := range obj {
		if k != "permissions" && k != "constraints" {
			return Statement{}, FieldErrorf(field+"."+k, "unknown field; a statement has only permissions and constraints")
		}
	}
	var st Statement
	var perms []json.RawMessage
	if err := json.Unmarshal(obj["permissions"], &perms); err != nil || len(perms) == 0 {
		return Statement{}, FieldErrorf(field+".permissions", "must be a non-empty array of permissions such as \"payin:create\"")
	}
	for j, p := range perms {
		pf := fmt.Sprintf("%s.permissions[%d]", field, j)
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return Statement{}, FieldErrorf(pf, "must be a string such as \"payin:create\"")
		}
		if !KnownPermission(s) {
			return Statement{}, FieldErrorf(pf, "unknown permission %q; use resource:action (resources: %s; actions: %s), group#all or group#payment_component",
				s, strings.Join(Resources, ", "), strings.Join(Actions, ", "))
		}
		if !slices.Contains(st.Permissions, s) {
			st.Permissions = append(st.Permissions, s)
		}
	}
	var cons map[string]json.RawMessage
	if err := json.Unmarshal(obj["constraints"], &cons); err != nil || cons == nil {
		return Statement{}, FieldErrorf(field+".constraints", "must be an object such as {\"platform\":{\"platform_id\":\"…\"}}")
	}
	for kind, v := range cons {
		cf := field + ".constraints." + kind
		switch kind {
		case "platform":
			id, err := constraintID(cf, "platform_id", v)
			if err != nil {
				return Statement{}, err
			}
			st.Constraints.Platform = &PlatformConstraint{PlatformID: id}
		case "merchant":
			id, err := constraintID(cf, "merchant_id", v)
			if err != nil {
				return Statement{}, err
			}
			st.Constraints.Merchant = &MerchantConstraint{MerchantID: id}
		case "payin_config":
			id, err := constraintID(cf, "payin_config_id", v)
			if err != nil {
				return Statement{}, err
			}
			st.Constraints.PayinConfig = &PayinConfigConstraint{PayinConfigID: id}
		case "payment_method_config":
			id, err := constraintID(cf, "payment_method_config_id", v)
			if err != nil {
				return Statement{}, err
			}
			st.Constraints.PaymentMethodConfig = &PaymentMethodConfigConstraint{PaymentMethodConfigID: id}
		default:
			return Statement{}, FieldErrorf(cf, "unknown constraint kind %q; known kinds are platform, merchant, payin_config and payment_method_config", kind)
		}
	}
	if st.Constraints.Platform == nil && defaultPlatformID != "" {
		st.Constraints.Platform = &PlatformConstraint{PlatformID: defaultPlatformID}
	}
	if st.Constraints.Platform == nil {
		return Statement{}, FieldErrorf(field+".constraints.platform", "is required: every statement is constrained to a platform")
	}
	return st, nil
}

func constraintID(field, key string, raw json.RawMessage) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return "", FieldErrorf(field, "must be an object with %s", key)
	}
	for k := range m {
		if k != key {
			return "", FieldErrorf(field+"."+k, "unknown field; expected %s", key)
		}
	}
	var id string
	if err := json.Unmarshal(m[key], &id); err != nil || id == "" {
		return "", FieldErrorf(field+"."+key, "must be a non-empty string")
	}
	return id, nil
}

// KnownPermission reports whether p is a group (group#all,
// group#payment_component) or resource:action with a known resource and action.
func KnownPermission(p string) bool {
	if _, group := PermissionGroups[p]; group || p == PermissionAll {
		return true
	}
	res, act, ok := strings.Cut(p, ":")
	return ok && slices.Contains(Resources, res) && slices.Contains(Actions, act)
}

// CheckGrant enforces "no privilege escalation": every permission of every new
// statement must be granted by one of the creator's statements whose
// constraints the new statement repeats with the same values. The new
// statement may add a merchant, payin config or payment method config
// constraint but never drop one. A group other than group#all is granted
// when each of its members is; a member held only through
// group#payment_component is granted only as part of that group.
func CheckGrant(creator []Statement, statements []Statement) error {
	for i, s := range statements {
		for j, p := range s.Permissions {
			members := []string{p}
			if g, ok := PermissionGroups[p]; ok {
				members = g
			}
			for _, m := range members {
				if !grantable(creator, m, s.Constraints, p == PermissionPaymentComponent) {
					what := p
					if m != p {
						what = m + " (in " + p + ")"
					}
					return &Error{Code: EFORBIDDEN, Field: fmt.Sprintf("statements[%d].permissions[%d]", i, j),
						Message: fmt.Sprintf("cannot grant %s%s: the creating key does not hold it for these constraints", what, describeConstraints(s.Constraints))}
				}
			}
		}
	}
	return nil
}

// grantable reports whether one of the creator's statements may grant
// permission for constraints c. A permission the creator holds only through
// group#payment_component (which reaches only what the creator itself made)
// passes on only through that group (asComponent), never by name.
func grantable(creator []Statement, permission string, c Constraints, asComponent bool) bool {
	for _, cs := range creator {
		if permission == PermissionAll {
			if !slices.Contains(cs.Permissions, PermissionAll) {
				continue
			}
		} else if g := cs.grant(permission); g == grantNone || (g == grantComponent && !asComponent) {
			continue
		}
		if cs.Constraints.Platform != nil && (c.Platform == nil || c.Platform.PlatformID != cs.Constraints.Platform.PlatformID) {
			continue
		}
		if cs.Constraints.Merchant != nil && (c.Merchant == nil || c.Merchant.MerchantID != cs.Constraints.Merchant.MerchantID) {
			continue
		}
		if cs.Constraints.PayinConfig != nil && (c.PayinConfig == nil || c.PayinConfig.PayinConfigID != cs.Constraints.PayinConfig.PayinConfigID) {
			continue
		}
		if cs.Constraints.PaymentMethodConfig != nil && (c.PaymentMethodConfig == nil ||
			c.PaymentMethodConfig.PaymentMethodConfigID != cs.Constraints.PaymentMethodConfig.PaymentMethodConfigID) {
			continue
		}
		return true
	}
	return false
}

func describeConstraints(c Constraints) string {
	var parts []string
	if c.Platform != nil {
		parts = append(parts, "platform "+c.Platform.PlatformID)
	}
	if c.Merchant != nil {
		parts = append(parts, "merchant "+c.Merchant.MerchantID)
	}
	if c.PayinConfig != nil {
		parts = append(parts, "payin config "+c.PayinConfig.PayinConfigID)
	}
	if c.PaymentMethodConfig != nil {
		parts = append(parts, "payment method config "+c.PaymentMethodConfig.PaymentMethodConfigID)
	}
	if len(parts) == 0 {
		return ""
	}
	return " for " + strings.Join(parts, " and ")
}

// AdminStatements are the statements of a platform's admin key: every permission on the platform.
func AdminStatements(platformID string) []Statement {
	return []Statement{{Permissions: []string{PermissionAll}, Constraints: Constraints{Platform: &PlatformConstraint{PlatformID: platformID}}}}
}
