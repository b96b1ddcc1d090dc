package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// requestInfo collects what the one log line of a request reports.
type requestInfo struct {
	id         string
	keyID      string
	platformID string
	outcome    string // the connector's error_code, or "OK"
	err        error  // an internal error, logged but never sent
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// loggedRequest is what logRequests keeps of a request, in one allocation.
type loggedRequest struct {
	info requestInfo
	rec  statusRecorder
}

// logRequests gives every request an id (X-Request-Id in and out), recovers
// panics, and logs one line per request. It never logs bodies, so no card
// data or secret can reach the log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		logged := &loggedRequest{info: requestInfo{id: requestID(r.Header.Get("X-Request-Id"))}, rec: statusRecorder{ResponseWriter: w}}
		info, rec := &logged.info, &logged.rec
		w.Header().Set("X-Request-Id", info.id)
		ctx := context.WithValue(r.Context(), infoKey{}, info)
		r = r.WithContext(ivrpay.NewContextWithClientAddress(ctx, ClientAddress(r, s.BehindProxy)))
		defer func() {
			if p := recover(); p != nil {
				info.err = panicError{p}
				if platform := connectorPlatform(r.Pattern); rec.status == 0 && platform != nil {
					// A voice platform reads only its own shape; the id keys stay present and null.
					status, b := platform.Answer("", ivrpay.IVRResult{ErrorCode: ivrpay.ConnInternal, ErrorMessage: internalErrorMessage})
					rec.Header().Set("Content-Type", "application/json")
					rec.WriteHeader(status)
					rec.Write(b)
				} else if rec.status == 0 {
					writeError(rec, r, info.err)
				}
			}
			var attrsArray [9]slog.Attr
			attrs := append(attrsArray[:0],
				slog.String("request_id", info.id), slog.String("method", r.Method), slog.String("route", r.Pattern),
				slog.Int("status", rec.status), slog.Duration("latency", time.Since(start)))
			if r.Pattern == "" {
				attrs[2] = slog.String("route", "unmatched")
			}
			if info.keyID != "" {
				attrs = append(attrs, slog.String("key_id", info.keyID), slog.String("platform_id", info.platformID))
			}
			if info.outcome != "" {
				attrs = append(attrs, slog.String("outcome", info.outcome))
			}
			level := slog.LevelInfo
			if info.err != nil {
				level = slog.LevelError
				attrs = append(attrs, slog.String("error", info.err.Error()))
			}
			// The handler directly, as Logger.LogAttrs would call it but without
			// the caller's program counter, which no handler of the server
			// prints (runtime.Callers on every request).
			if h := s.Logger.Handler(); h.Enabled(r.Context(), level) {
				line := slog.NewRecord(time.Now(), level, "request", 0)
				line.AddAttrs(attrs...)
				_ = h.Handle(r.Context(), line)
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			s.Metrics.observe(route, rec.status, time.Since(start), info.outcome)
		}()
		next.ServeHTTP(rec, r)
	})
}

type panicError struct{ v any }

func (p panicError) Error() string { return "panic in handler" }

// requestID keeps a caller's id when it is short and printable, so ids can be
// followed across systems without letting a header inject into the log; an
// id that holds a card number is neither echoed nor logged (SPEC §9).
func requestID(in string) string {
	if in != "" && len(in) <= 64 && strings.IndexFunc(in, func(r rune) bool { return r < 0x21 || r > 0x7e }) < 0 && !ivrpay.ContainsCardNumber(in) {
		return in
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// api authenticates a /v1 request with its Bearer key and fixes its API version.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := s.limitAddress(r)
		credential := ""
		if s.Limiter != nil {
			credential = s.Limiter.CredentialKey(addr, r)
		}
		if s.rateLimited(w, r, "", addr, credential) {
			writeError(w, r, ivrpay.Errorf(ivrpay.ERATELIMITED, "too many failed authentications from %s; retry after the time in Retry-After", addr))
			return
		}
		scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			s.authFailed(r, addr, limit{addr, AuthFailureLimit})
			writeError(w, r, ivrpay.Errorf(ivrpay.EUNAUTHORIZED, "Unauthorized: send your API key as Authorization: Bearer <api_key>."))
			return
		}
		key, err := s.Auth.Authenticate(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			if ivrpay.ErrorCode(err) == ivrpay.EUNAUTHORIZED {
				s.authFailed(r, addr, limit{addr, AuthFailureLimit})
			}
			writeError(w, r, err)
			return
		}
		s.authSucceeded(r, credential)
		info := infoFrom(r.Context())
		info.keyID, info.platformID = key.ID, key.PlatformID
		version, err := ivrpay.EffectiveVersion(r.Header.Get("Rainforest-Api-Version"), key.Platform.MinAPIVersion)
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.Header().Set("Rainforest-Api-Version", string(version))
		if field, nul := ivrpay.RequestNUL(r.PathValue("id"), r.URL.Query()); nul {
			writeError(w, r, ivrpay.NULError(field))
			return
		}
		ctx := ivrpay.NewContextWithVersion(ivrpay.NewContextWithPrincipal(r.Context(), key), version)
		if err := h(w, r.WithContext(ctx)); err != nil {
			writeError(w, r, err)
		}
	})
}

// rateLimited answers whether a request must be refused before its
// credential is checked, and sets Retry-After when it must: when own (a
// credential's limit key, or "") is blocked, or when address (a limit key)
// is blocked and credential (a CredentialKey) has not authenticated from
// there before, so that other people's failures never lock out a valid
// credential while a guessing run learns nothing from a blocked address.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, own, address, credential string) bool {
	if s.Limiter == nil {
		return false
	}
	left, blocked := time.Duration(0), false
	if own != "" {
		left, blocked = s.Limiter.Blocked(own)
	}
	if !blocked {
		left, blocked = s.Limiter.Blocked(address)
		blocked = blocked && !s.Limiter.KnownGood(r.Context(), credential)
	}
	if !blocked {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(left.Seconds())+1))
	if s.Metrics != nil {
		s.Metrics.rateLimits.Inc()
	}
	infoFrom(r.Context()).outcome = "RATE_LIMITED"
	return true
}

// authSucceeded adds the credential (a CredentialKey) to the known-good list.
func (s *Server) authSucceeded(r *http.Request, credential string) {
	if err := s.Limiter.Succeeded(r.Context(), credential); err != nil {
		s.Logger.Warn("recording a known-good credential failed; the next success tries again",
			"request_id", infoFrom(r.Context()).id, "error", err)
	}
}

// limit is one count an authentication failure adds to: a limiter key and
// the number of failures within AuthFailureWindow that blocks it.
type limit struct {
	key string
	max int
}

// authFailed counts a 401 from addr (a LimitAddress) against each limit,
// logs when one becomes blocked, and audits it: with a limiter that audits,
// aggregated per address (AuditFailure), so a flood writes a bounded number
// of rows rather than one each.
func (s *Server) authFailed(r *http.Request, addr string, limits ...limit) {
	blocked := false
	if s.Limiter != nil {
		for _, l := range limits {
			if s.Limiter.FailLimit(l.key, l.max) {
				blocked = true
			}
		}
	}
	if blocked {
		s.Logger.Warn("authentication failures rate limited", "request_id", infoFrom(r.Context()).id,
			"client", addr, "route", r.Pattern, "blocked_for", AuthBlockDuration.String())
	}
	if s.Limiter.AuditFailure(addr, r.Pattern, blocked) || s.Audit == nil {
		return
	}
	detail := "route=" + r.Pattern
	if blocked {
		detail += " blocked_for=" + AuthBlockDuration.String()
	}
	if err := s.Audit.RecordAudit(r.Context(), ivrpay.AuditEvent{Actor: ivrpay.ActorAnonymous, Action: "auth.failure",
		ClientAddress: addr, Outcome: ivrpay.AuditDenied, Detail: detail}); err != nil {
		s.Logger.Error("audit record failed", "request_id", infoFrom(r.Context()).id, "error", err)
	}
}
