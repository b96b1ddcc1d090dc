package twilio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ivrpay/ivrpay/card"
)

// cardTypes pairs Twilio's card type names with the API's brands, in the
// order of the guide's table, which is also the order generated TwiML lists them.
var cardTypes = []struct {
	name   string
	brand  card.Brand
	studio string // the label Studio's Valid Card Types multi-select shows
}{
	{"visa", card.Visa, "Visa"},
	{"mastercard", card.Mastercard, "Master Card"},
	{"amex", card.Amex, "American Express"},
	{"discover", card.Discover, "Discover"},
	{"jcb", card.JCB, "JCB"},
	{"diners-club", card.DinersClub, "Diners Club"},
}

// SupportedCardTypes is the validCardTypes value that accepts every brand ivrpay
// processes: "visa mastercard amex discover jcb diners-club".
var SupportedCardTypes = func() string {
	names := make([]string, len(cardTypes))
	for i, t := range cardTypes {
		names[i] = t.name
	}
	return strings.Join(names, " ")
}()

// DefaultValidCardTypes is what Twilio accepts when <Pay> has no validCardTypes:
// Discover, JCB and Diners Club callers are then refused before ivrpay sees them.
const DefaultValidCardTypes = "visa mastercard amex"

// CardType returns Twilio's card type name for a brand ("visa", "diners-club",
// …), or "" for a brand Twilio has no name for.
func CardType(b card.Brand) string {
	for _, t := range cardTypes {
		if t.brand == b {
			return t.name
		}
	}
	return ""
}

// BrandForCardType returns the brand of a Twilio card type name, or "" when
// ivrpay does not process that type. It is case-insensitive and also accepts
// Studio's spelling "master-card".
func BrandForCardType(name string) card.Brand {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "master-card" {
		name = "mastercard"
	}
	for _, t := range cardTypes {
		if t.name == name {
			return t.brand
		}
	}
	return ""
}

// Pay is one <Pay> verb. Each attribute field holds the attribute's text as
// written; an empty field is an absent attribute, which Twilio treats as its
// default (see the field comments).
type Pay struct {
	// PaymentConnector is the Generic Pay Connector's unique name (Twilio's default: "Default").
	PaymentConnector string
	// ChargeAmount is a decimal dollar amount; greater than 0 charges, absent or 0 tokenizes.
	ChargeAmount string
	// Currency defaults to "usd".
	Currency string
	// PaymentMethod defaults to "credit-card".
	PaymentMethod string
	// TokenType defaults to "reusable".
	TokenType string
	// ValidCardTypes is space-separated and defaults to DefaultValidCardTypes.
	ValidCardTypes string
	// SecurityCode defaults to "true".
	SecurityCode string
	// PostalCode is "true" (the default), "false", or a fixed postal code sent
	// to the connector without prompting the caller.
	PostalCode string
	// Description is passed to the connector.
	Description string
	// Action is the URL Twilio posts the result to.
	Action string
	// StatusCallback is the URL Twilio posts progress to.
	StatusCallback string
	// Other holds the attributes this model has no field for (timeout,
	// maxAttempts, language, …) in document order, so that nothing is lost.
	Other []xml.Attr
	// Parameters are the <Parameter> children, in document order; Twilio sends
	// them to the connector as the request's parameters object.
	Parameters []Parameter
	// Prompts are the <Prompt> children's attributes; only lint looks at them.
	Prompts [][]xml.Attr
}

// Parameter is a <Parameter name value/> child of <Pay>.
type Parameter struct {
	Name, Value string
}

// Custom parameter names that carry the config id to the connector.
const (
	ParamPayinConfigID         = "payin_config_id"
	ParamPaymentMethodConfigID = "payment_method_config_id"
	// ParamPaymentMethodID is the name the guide gives the payment method
	// config parameter; the connector accepts it as an alias.
	ParamPaymentMethodID = "payment_method_id"
	// ParamCaller carries the caller's number, which the connector's
	// caller-velocity risk rule counts declines by (docs/risk.md).
	ParamCaller = "caller"
	// CallerValue is the caller's number as TwiML substitutes it; Studio's
	// is StudioCallerValue.
	CallerValue       = "{{From}}"
	StudioCallerValue = "{{trigger.call.From}}"
)

// attrFields maps attribute names to the model's fields, in the fixed order in
// which TwiML renders them (the guide's table first, then the URLs).
func (p *Pay) attrFields() []struct {
	name string
	ptr  *string
} {
	return []struct {
		name string
		ptr  *string
	}{
		{"paymentConnector", &p.PaymentConnector},
		{"validCardTypes", &p.ValidCardTypes},
		{"securityCode", &p.SecurityCode},
		{"postalCode", &p.PostalCode},
		{"tokenType", &p.TokenType},
		{"chargeAmount", &p.ChargeAmount},
		{"currency", &p.Currency},
		{"paymentMethod", &p.PaymentMethod},
		{"description", &p.Description},
		{"action", &p.Action},
		{"statusCallback", &p.StatusCallback},
	}
}

// Param returns the value of the first <Parameter> named name.
func (p *Pay) Param(name string) (string, bool) {
	for _, prm := range p.Parameters {
		if prm.Name == name {
			return prm.Value, true
		}
	}
	return "", false
}

// ChargeCents parses ChargeAmount into cents; an absent amount is 0.
func (p *Pay) ChargeCents() (int64, error) {
	if strings.TrimSpace(p.ChargeAmount) == "" {
		return 0, nil
	}
	return ParseAmount(strings.TrimSpace(p.ChargeAmount))
}

// Method is the connector method this <Pay> makes Twilio call: charge when
// chargeAmount is greater than 0, tokenize when it is absent or 0.
func (p *Pay) Method() (string, error) {
	cents, err := p.ChargeCents()
	if err != nil {
		return "", err
	}
	if cents > 0 {
		return MethodCharge, nil
	}
	return MethodTokenize, nil
}

// CardTypes returns the card types Twilio accepts for this <Pay>, lower-cased,
// applying Twilio's default when validCardTypes is absent.
func (p *Pay) CardTypes() []string {
	v := p.ValidCardTypes
	if strings.TrimSpace(v) == "" {
		v = DefaultValidCardTypes
	}
	return strings.Fields(strings.ToLower(v))
}

// ErrNoPay is returned by ParsePay for a document without a <Pay> verb.
var ErrNoPay = errors.New("the TwiML document has no <Pay> verb")

// ParseTwiML returns every <Pay> verb of a TwiML document, in document order.
// Attribute order is irrelevant, and <Pay> is found wherever it is nested, so
// any well-formed document (including twilio-go's output) is accepted.
func ParseTwiML(doc []byte) ([]Pay, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var (
		pays     []Pay
		cur      *Pay // the <Pay> being read; nil outside one
		depth    int  // element depth below cur
		elements bool // whether the document has any element at all
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the document is not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elements = true
			if cur == nil {
				if t.Name.Local == "Pay" {
					pays = append(pays, Pay{})
					cur = &pays[len(pays)-1]
					cur.setAttrs(t.Attr)
					depth = 0
				}
				continue
			}
			if depth == 0 {
				switch t.Name.Local {
				case "Parameter":
					var prm Parameter
					for _, a := range t.Attr {
						switch a.Name.Local {
						case "name":
							prm.Name = a.Value
						case "value":
							prm.Value = a.Value
						}
					}
					cur.Parameters = append(cur.Parameters, prm)
				case "Prompt":
					cur.Prompts = append(cur.Prompts, append([]xml.Attr(nil), t.Attr...))
				}
			}
			depth++
		case xml.EndElement:
			if cur == nil {
				continue
			}
			if depth == 0 {
				cur = nil
				continue
			}
			depth--
		}
	}
	if !elements {
		// Plain text parses as XML character data; it is not TwiML.
		return nil, errors.New("the document is not TwiML: it has no XML element")
	}
	return pays, nil
}

// ParsePay returns the one <Pay> verb of a TwiML document. A document with
// several is refused, since a simulated call runs one <Pay> at a time.
func ParsePay(doc []byte) (*Pay, error) {
	pays, err := ParseTwiML(doc)
	if err != nil {
		return nil, err
	}
	switch len(pays) {
	case 0:
		return nil, ErrNoPay
	case 1:
		return &pays[0], nil
	}
	return nil, fmt.Errorf("the TwiML document has %d <Pay> verbs; keep the one to simulate", len(pays))
}

// SetAttr sets an attribute as a TwiML document would: the field of a known
// attribute, or one more of Other.
func (p *Pay) SetAttr(name, value string) {
	p.setAttrs([]xml.Attr{{Name: xml.Name{Local: name}, Value: value}})
}

func (p *Pay) setAttrs(attrs []xml.Attr) {
	fields := p.attrFields()
next:
	for _, a := range attrs {
		if a.Name.Space == "" {
			for _, f := range fields {
				if f.name == a.Name.Local {
					*f.ptr = a.Value
					continue next
				}
			}
		}
		p.Other = append(p.Other, a)
	}
}

// PayOptions describe the <Pay> for one config: a payin config (AmountCents
// and PayinConfigID) or a payment method config (PaymentMethodConfigID alone).
type PayOptions struct {
	// Connector is the Generic Pay Connector's unique name in the Twilio Console.
	Connector string
	// AmountCents is the payin config's amount; it must be 0 for a payment method config.
	AmountCents int64
	// PayinConfigID makes the <Pay> charge that payin config.
	PayinConfigID string
	// PaymentMethodConfigID makes the <Pay> store a card for that payment method config.
	PaymentMethodConfigID string
	// Action and StatusCallback are optional URLs.
	Action, StatusCallback string
	// Description is optional text Twilio passes to the connector.
	Description string
	// Caller passes the caller's number as <Parameter name="caller">, so
	// that the risk rules can count declines per caller.
	Caller bool
}

// Validate reports the first problem with o, naming the option.
func (o PayOptions) Validate() error {
	switch {
	case strings.TrimSpace(o.Connector) == "":
		return errors.New("connector: the Generic Pay Connector's unique name is required")
	case o.PayinConfigID != "" && o.PaymentMethodConfigID != "":
		return errors.New("give either a payin config id or a payment method config id, not both")
	case o.PayinConfigID == "" && o.PaymentMethodConfigID == "":
		return errors.New("a payin config id (with its amount) or a payment method config id is required")
	case o.PayinConfigID != "" && o.AmountCents <= 0:
		return errors.New("amount: a payin needs the payin config's amount, greater than 0")
	case o.PayinConfigID != "" && o.AmountCents > maxChargeCents:
		return fmt.Errorf("amount: Twilio charges at most %s", FormatCents(maxChargeCents))
	case o.PaymentMethodConfigID != "" && o.AmountCents != 0:
		return errors.New("amount: storing a card charges nothing; leave the amount out")
	}
	return nil
}

// maxChargeCents is Twilio's upper bound for chargeAmount (1,000,000).
const maxChargeCents = 1_000_000_00

// NewPay builds the <Pay> the guide asks for: every brand ivrpay processes,
// security and postal codes requested, a reusable token, USD, credit card,
// and the config id as a <Parameter>.
func NewPay(o PayOptions) (*Pay, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := &Pay{
		PaymentConnector: o.Connector,
		ValidCardTypes:   SupportedCardTypes,
		SecurityCode:     "true",
		PostalCode:       "true",
		TokenType:        "reusable",
		Currency:         "usd",
		PaymentMethod:    "credit-card",
		Description:      o.Description,
		Action:           o.Action,
		StatusCallback:   o.StatusCallback,
	}
	if o.PayinConfigID != "" {
		// FormatCents keeps money out of floats: 1000 cents is "10.00", exactly.
		p.ChargeAmount = FormatCents(o.AmountCents)
		p.Parameters = []Parameter{{ParamPayinConfigID, o.PayinConfigID}}
	} else {
		p.ChargeAmount = "0"
		p.Parameters = []Parameter{{ParamPaymentMethodConfigID, o.PaymentMethodConfigID}}
	}
	if o.Caller {
		p.Parameters = append(p.Parameters, Parameter{ParamCaller, CallerValue})
	}
	return p, nil
}

// TwiML renders a TwiML document holding this <Pay> alone: the XML
// declaration, <Response>, the attributes in a fixed order and the
// <Parameter> children, indented, so that equal models are equal bytes.
// Prompts are not rendered.
func (p *Pay) TwiML() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response>\n  <Pay")
	for _, f := range p.attrFields() {
		if *f.ptr != "" {
			writeAttr(&b, f.name, *f.ptr)
		}
	}
	for _, a := range p.Other {
		writeAttr(&b, a.Name.Local, a.Value)
	}
	if len(p.Parameters) == 0 {
		b.WriteString("/>\n")
	} else {
		b.WriteString(">\n")
		for _, prm := range p.Parameters {
			b.WriteString("    <Parameter")
			writeAttr(&b, "name", prm.Name)
			writeAttr(&b, "value", prm.Value)
			b.WriteString("/>\n")
		}
		b.WriteString("  </Pay>\n")
	}
	b.WriteString("</Response>\n")
	return b.Bytes()
}

func writeAttr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	_ = xml.EscapeText(b, []byte(value)) // writing to a bytes.Buffer cannot fail
	b.WriteByte('"')
}

// GenerateTwiML is NewPay followed by TwiML.
func GenerateTwiML(o PayOptions) ([]byte, error) {
	p, err := NewPay(o)
	if err != nil {
		return nil, err
	}
	return p.TwiML(), nil
}
