package ivrpay

// APIVersion is a Rainforest-style dated API version.
type APIVersion string

// Known API versions, oldest first.
const (
	APIVersion20230101 APIVersion = "2023-01-01"
	APIVersion20231201 APIVersion = "2023-12-01"
	APIVersion20241016 APIVersion = "2024-10-16"
	LatestAPIVersion              = APIVersion20241016
)

// APIVersions lists the known versions, oldest first.
var APIVersions = []APIVersion{APIVersion20230101, APIVersion20231201, APIVersion20241016}

// Known reports whether v is a known version.
func (v APIVersion) Known() bool {
	for _, k := range APIVersions {
		if k == v {
			return true
		}
	}
	return false
}

// Before reports whether v is older than w. Versions are dates, so they compare as strings.
func (v APIVersion) Before(w APIVersion) bool { return v < w }

// SupportsIVR reports whether IVR payments are available at v (2023-12-01 and 2024-10-16 only).
func (v APIVersion) SupportsIVR() bool {
	return v == APIVersion20231201 || v == APIVersion20241016
}

// SupportsAuthorize reports whether processing_mode AUTHORIZE and the AUTHORIZED status exist at v.
func (v APIVersion) SupportsAuthorize() bool { return !v.Before(APIVersion20241016) }

// EffectiveVersion validates a requested version (the Rainforest-Api-Version
// header, possibly empty) against a platform's minimum.
func EffectiveVersion(requested string, min APIVersion) (APIVersion, error) {
	if requested == "" {
		return min, nil
	}
	v := APIVersion(requested)
	if !v.Known() {
		return "", FieldErrorf("Rainforest-Api-Version", "unknown API version %q; known versions are 2023-01-01, 2023-12-01 and 2024-10-16", requested)
	}
	if v.Before(min) {
		return "", FieldErrorf("Rainforest-Api-Version", "API version %s is older than this platform's minimum API version %s", v, min)
	}
	return v, nil
}

// ShapePayin adapts a payin to the API version a client reads it at: the one
// place where a response changes with the version. What a version refuses
// or reads differently in a request (processing_mode AUTHORIZE, capture, the
// PROCESSING status filter) is checked where that request is validated.
func ShapePayin(v APIVersion, p *Payin) *Payin {
	if p == nil || v.SupportsAuthorize() || p.Status != PayinStatusAuthorized {
		return p
	}
	shaped := *p
	shaped.Status = PayinStatusProcessing
	return &shaped
}
