package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ivrpay/ivrpay"
)

// Client is the Go client of the REST API (/v1). The demo, the loadtest,
// `ivrpay twiml --config` and the tests use it, so that there is one place
// that knows how to authenticate and how to read the answer envelope.
type Client struct {
	// BaseURL is the deployment's URL without /v1, e.g. http://127.0.0.1:8080.
	BaseURL string
	// APIKey is sent as the Bearer key; "" sends no Authorization header.
	APIKey string
	// APIVersion is sent as Rainforest-Api-Version; "" lets the platform's
	// minimum version apply.
	APIVersion string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// maxAnswerBytes bounds an answer: a page of 1,000 payins is well under it.
const maxAnswerBytes = 64 << 20

// Error is an answer other than 200: its HTTP status and the envelope's
// first error. Code is empty when the answer was not the API's envelope.
type Error struct {
	Method, Path string
	Status       int
	Code         string
	Field        string
	Message      string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// NewRequest builds an authenticated request for path (which starts with
// /v1). body is nil for none, []byte or json.RawMessage sent as is, or a
// value sent as JSON.
func (c *Client) NewRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	if c.APIVersion != "" {
		req.Header.Set("Rainforest-Api-Version", c.APIVersion)
	}
	return req, nil
}

// Do sends a request (body as for NewRequest) and decodes the envelope's
// data into out, unless out is nil. An answer other than 200 is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.NewRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []envelopeError `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return &Error{Method: method, Path: path, Status: resp.StatusCode, Message: "the answer is not the API's JSON envelope: " + ivrpay.Truncate(string(raw), 200)}
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Method: method, Path: path, Status: resp.StatusCode}
		if len(env.Errors) > 0 {
			e.Code, e.Field, e.Message = env.Errors[0].Code, env.Errors[0].Field, env.Errors[0].Message
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s %s: decoding data: %w", method, path, err)
	}
	return nil
}

// call is Do for the typed methods: it decodes the data into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, body any) (*T, error) {
	var out T
	if err := c.Do(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateAPIKey creates a key holding statements; the answer carries the
// secret, shown this once.
func (c *Client) CreateAPIKey(ctx context.Context, statements []ivrpay.Statement) (*ivrpay.APIKey, error) {
	return call[ivrpay.APIKey](ctx, c, "POST", "/v1/api_keys", map[string]any{"statements": statements})
}

// CreateMerchant creates a merchant on the key's platform.
func (c *Client) CreateMerchant(ctx context.Context, m ivrpay.MerchantCreate) (*ivrpay.Merchant, error) {
	return call[ivrpay.Merchant](ctx, c, "POST", "/v1/merchants", m)
}

// ListMerchants reads one page of the merchants the key can see.
func (c *Client) ListMerchants(ctx context.Context, page ivrpay.Page) (*ivrpay.List[ivrpay.Merchant], error) {
	return call[ivrpay.List[ivrpay.Merchant]](ctx, c, "GET", "/v1/merchants"+pageQuery(page, nil), nil)
}

// CreatePayinConfig creates a payin config (step 1 of a payment).
func (c *Client) CreatePayinConfig(ctx context.Context, cfg ivrpay.PayinConfigCreate) (*ivrpay.PayinConfig, error) {
	return call[ivrpay.PayinConfig](ctx, c, "POST", "/v1/payin_configs", cfg)
}

// GetPayinConfig reads a payin config.
func (c *Client) GetPayinConfig(ctx context.Context, id string) (*ivrpay.PayinConfig, error) {
	return call[ivrpay.PayinConfig](ctx, c, "GET", "/v1/payin_configs/"+url.PathEscape(id), nil)
}

// CreatePaymentMethodConfig creates a payment method config (step 1 of storing a card).
func (c *Client) CreatePaymentMethodConfig(ctx context.Context, cfg ivrpay.PaymentMethodConfigCreate) (*ivrpay.PaymentMethodConfig, error) {
	return call[ivrpay.PaymentMethodConfig](ctx, c, "POST", "/v1/payment_method_configs", cfg)
}

// GetPaymentMethodConfig reads a payment method config.
func (c *Client) GetPaymentMethodConfig(ctx context.Context, id string) (*ivrpay.PaymentMethodConfig, error) {
	return call[ivrpay.PaymentMethodConfig](ctx, c, "GET", "/v1/payment_method_configs/"+url.PathEscape(id), nil)
}

// GetPayin reads a payin.
func (c *Client) GetPayin(ctx context.Context, id string) (*ivrpay.Payin, error) {
	return call[ivrpay.Payin](ctx, c, "GET", "/v1/payins/"+url.PathEscape(id), nil)
}

// ListPayins reads one page of the payins the key can see that match f.
func (c *Client) ListPayins(ctx context.Context, f ivrpay.PayinFilter) (*ivrpay.List[ivrpay.Payin], error) {
	q := filterQuery(map[string]string{"merchant_id": f.MerchantID, "status": f.Status, "source": f.Source})
	return call[ivrpay.List[ivrpay.Payin]](ctx, c, "GET", "/v1/payins"+pageQuery(f.Page, q), nil)
}

// GetChargeback reads a chargeback.
func (c *Client) GetChargeback(ctx context.Context, id string) (*ivrpay.Chargeback, error) {
	return call[ivrpay.Chargeback](ctx, c, "GET", "/v1/chargebacks/"+url.PathEscape(id), nil)
}

// ListChargebacks reads one page of the chargebacks the key can see that match f.
func (c *Client) ListChargebacks(ctx context.Context, f ivrpay.ChargebackFilter) (*ivrpay.List[ivrpay.Chargeback], error) {
	q := filterQuery(map[string]string{"merchant_id": f.MerchantID, "payin_id": f.PayinID, "status": f.Status})
	return call[ivrpay.List[ivrpay.Chargeback]](ctx, c, "GET", "/v1/chargebacks"+pageQuery(f.Page, q), nil)
}

// filterQuery is a list's filters as a query, without the empty ones.
func filterQuery(filters map[string]string) url.Values {
	q := url.Values{}
	for k, v := range filters {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// GetPaymentMethod reads a stored card.
func (c *Client) GetPaymentMethod(ctx context.Context, id string) (*ivrpay.PaymentMethod, error) {
	return call[ivrpay.PaymentMethod](ctx, c, "GET", "/v1/payment_methods/"+url.PathEscape(id), nil)
}

// ChargePaymentMethod charges a stored card with a payin config.
func (c *Client) ChargePaymentMethod(ctx context.Context, paymentMethodID, payinConfigID string) (*ivrpay.Payin, error) {
	return call[ivrpay.Payin](ctx, c, "POST", "/v1/payment_methods/"+url.PathEscape(paymentMethodID)+"/payin",
		map[string]string{"payin_config_id": payinConfigID})
}

// CapturePayin captures an AUTHORIZED payin; a zero capture.Amount captures
// the whole authorized amount.
func (c *Client) CapturePayin(ctx context.Context, payinID string, capture ivrpay.PayinCapture) (*ivrpay.Payin, error) {
	var body any
	if capture.Amount != "" {
		body = capture
	}
	return call[ivrpay.Payin](ctx, c, "POST", "/v1/payins/"+url.PathEscape(payinID)+"/capture", body)
}

// VoidOrRefund voids a payin that has not settled or refunds one that has.
func (c *Client) VoidOrRefund(ctx context.Context, payinID string, v ivrpay.VoidOrRefund) (*ivrpay.VoidOrRefundResult, error) {
	return call[ivrpay.VoidOrRefundResult](ctx, c, "POST", "/v1/payins/"+url.PathEscape(payinID)+"/void_or_refund", v)
}

// CreateWebhookEndpoint registers a URL for events; the answer carries the
// signing secret, shown this once.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, e ivrpay.WebhookEndpointCreate) (*ivrpay.WebhookEndpoint, error) {
	return call[ivrpay.WebhookEndpoint](ctx, c, "POST", "/v1/webhook_endpoints", e)
}

// RotateWebhookEndpointSecret gives an endpoint a new signing secret, in the
// answer only; the replaced one keeps signing too for 24 hours.
func (c *Client) RotateWebhookEndpointSecret(ctx context.Context, endpointID string) (*ivrpay.WebhookEndpoint, error) {
	return call[ivrpay.WebhookEndpoint](ctx, c, "POST", "/v1/webhook_endpoints/"+url.PathEscape(endpointID)+"/rotate_secret", nil)
}

// ListWebhookDeliveries reads one page of an endpoint's deliveries.
func (c *Client) ListWebhookDeliveries(ctx context.Context, endpointID string, page ivrpay.Page) (*ivrpay.List[ivrpay.WebhookDelivery], error) {
	return call[ivrpay.List[ivrpay.WebhookDelivery]](ctx, c, "GET",
		"/v1/webhook_endpoints/"+url.PathEscape(endpointID)+"/deliveries"+pageQuery(page, nil), nil)
}

// pageQuery adds page's limit and start_key to q and returns the query
// string, "" when it is empty.
func pageQuery(page ivrpay.Page, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	if page.Limit > 0 {
		q.Set("limit", strconv.Itoa(page.Limit))
	}
	if page.StartKey != "" {
		q.Set("start_key", page.StartKey)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
