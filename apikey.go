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
		"payment_method", "refund", "webhook_endpoint", "platform"}
	Actions = []string{"create", "read", "update", "delete"}
)

// PermissionAll grants every permission.
const PermissionAll = "group#all"

// API key statuses.
const (
	APIKeyStatusEnabled  = "ENABLED"
	APIKeyStatusDisabled = "DISABLED"
)

// APIKey is a secret that belongs to one platform and carries statements.
// Only a hash of the secret is stored; Secret is set once, on creation.
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
}

// Statement grants permissions on objects that match every constraint.
type Statement struct {
	Permissions []string    `json:"permissions"`
	Constraints Constraints `json:"constraints"`
}

// Constraints restrict a statement to one platform and, optionally, one merchant.
type Constraints struct {
	Platform *PlatformConstraint `json:"platform,omitempty"`
	Merchant *MerchantConstraint `json:"merchant,omitempty"`
}

// PlatformConstraint matches objects owned by one platform.
type PlatformConstraint struct {
	PlatformID string `json:"platform_id"`
}

// MerchantConstraint matches objects of one merchant, never platform-level objects.
type MerchantConstraint struct {
	MerchantID string `json:"merchant_id"`
}

// Object is what a permission is checked against: the owning platform, and the
// merchant for objects that have one (empty for platform-level objects).
type Object struct {
	PlatformID string
	MerchantID string
}

// Allows reports whether the statements grant permission on obj: deny by
// default, OR across statements, AND across a statement's constraints.
func Allows(statements []Statement, permission string, obj Object) bool {
	for _, s := range statements {
		if s.grants(permission) && s.Constraints.match(obj) {
			return true
		}
	}
	return false
}

func (s Statement) grants(permission string) bool {
	return slices.Contains(s.Permissions, PermissionAll) || slices.Contains(s.Permissions, permission)
}

func (c Constraints) match(obj Object) bool {
	if c.Platform != nil && c.Platform.PlatformID != obj.PlatformID {
		return false
	}
	// A merchant constraint never matches a platform-level object.
	if c.Merchant != nil && (obj.MerchantID == "" || c.Merchant.MerchantID != obj.MerchantID) {
		return false
	}
	return true
}

// Authorize returns nil if key grants permission on obj, and otherwise an
// EFORBIDDEN error that names the missing permission.
func Authorize(key *APIKey, permission string, obj Object) error {
	if key == nil {
		return Errorf(EUNAUTHORIZED, "Unauthorized.")
	}
	if Allows(key.Statements, permission, obj) {
		return nil
	}
	if obj.MerchantID != "" {
		return Errorf(EFORBIDDEN, "missing permission %s for merchant %s", permission, obj.MerchantID)
	}
	return Errorf(EFORBIDDEN, "missing permission %s for platform %s", permission, obj.PlatformID)
}

// AuthorizeObject is Authorize for an object that may belong to another
// platform: that answers 404 (its existence is not revealed), and an object
// of the key's platform that its statements exclude answers 403, naming the
// permission.
func AuthorizeObject(key *APIKey, permission, kind, id string, obj Object) error {
	if key == nil {
		return Errorf(EUNAUTHORIZED, "Unauthorized.")
	}
	if obj.PlatformID != key.PlatformID {
		return Errorf(ENOTFOUND, "%s %s not found", kind, id)
	}
	return Authorize(key, permission, obj)
}

// ReadScope says which objects of its platform a key may read with a permission:
// all of them, those of some merchants, or none.
type ReadScope struct {
	All         bool
	MerchantIDs []string
}

// Empty reports whether the scope grants nothing.
func (s ReadScope) Empty() bool { return !s.All && len(s.MerchantIDs) == 0 }

// ScopeFor computes the read scope of key for permission on its own platform.
// List endpoints use it to return only objects the key may read.
func ScopeFor(key *APIKey, permission string) ReadScope {
	var scope ReadScope
	for _, s := range key.Statements {
		if !s.grants(permission) {
			continue
		}
		if s.Constraints.Platform != nil && s.Constraints.Platform.PlatformID != key.PlatformID {
			continue
		}
		if s.Constraints.Merchant == nil {
			return ReadScope{All: true}
		}
		if !slices.Contains(scope.MerchantIDs, s.Constraints.Merchant.MerchantID) {
			scope.MerchantIDs = append(scope.MerchantIDs, s.Constraints.Merchant.MerchantID)
		}
	}
	return scope
}

// ParseStatements decodes and validates a statements array strictly. Unknown
// fields, unknown constraint kinds, unknown permissions and malformed
// statements are refused with an EINVALID error naming the field
// ("statements[0].permissions[1]"). Every statement must be constrained to a platform.
func ParseStatements(raw json.RawMessage) ([]Statement, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, FieldErrorf("statements", "is required: a non-empty array of statements")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, FieldErrorf("statements", "must be an array of statements")
	}
	if len(items) == 0 {
		return nil, FieldErrorf("statements", "must contain at least one statement")
	}
	if len(items) > 50 {
		return nil, FieldErrorf("statements", "must contain at most 50 statements")
	}
	out := make([]Statement, 0, len(items))
	for i, item := range items {
		st, err := parseStatement(fmt.Sprintf("statements[%d]", i), item)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func parseStatement(field string, raw json.RawMessage) (Statement, error) {
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
			return Statement{}, FieldErrorf(pf, "unknown permission %q; use resource:action (resources: %s; actions: %s) or group#all",
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
		default:
			return Statement{}, FieldErrorf(cf, "unknown constraint kind %q; known kinds are platform and merchant", kind)
		}
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

// KnownPermission reports whether p is group#all or resource:action with a known resource and action.
func KnownPermission(p string) bool {
	if p == PermissionAll {
		return true
	}
	res, act, ok := strings.Cut(p, ":")
	return ok && slices.Contains(Resources, res) && slices.Contains(Actions, act)
}

// CheckGrant enforces "no privilege escalation": every permission of every new
// statement must be granted by one of the creator's statements whose
// constraints the new statement repeats with the same values. The new
// statement may add a merchant constraint but never drop one.
func CheckGrant(creator []Statement, statements []Statement) error {
	for i, s := range statements {
		for j, p := range s.Permissions {
			if !grantable(creator, p, s.Constraints) {
				return &Error{Code: EFORBIDDEN, Field: fmt.Sprintf("statements[%d].permissions[%d]", i, j),
					Message: fmt.Sprintf("cannot grant %s%s: the creating key does not hold it for these constraints", p, describeConstraints(s.Constraints))}
			}
		}
	}
	return nil
}

func grantable(creator []Statement, permission string, c Constraints) bool {
	for _, cs := range creator {
		if permission == PermissionAll {
			if !slices.Contains(cs.Permissions, PermissionAll) {
				continue
			}
		} else if !cs.grants(permission) {
			continue
		}
		if cs.Constraints.Platform != nil && (c.Platform == nil || c.Platform.PlatformID != cs.Constraints.Platform.PlatformID) {
			continue
		}
		if cs.Constraints.Merchant != nil && (c.Merchant == nil || c.Merchant.MerchantID != cs.Constraints.Merchant.MerchantID) {
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
	if len(parts) == 0 {
		return ""
	}
	return " for " + strings.Join(parts, " and ")
}

// AdminStatements are the statements of a platform's admin key: every permission on the platform.
func AdminStatements(platformID string) []Statement {
	return []Statement{{Permissions: []string{PermissionAll}, Constraints: Constraints{Platform: &PlatformConstraint{PlatformID: platformID}}}}
}
