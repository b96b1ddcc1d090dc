package twilio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// StudioWidgetType is the flow JSON type of Studio's "Capture Payments" widget.
const StudioWidgetType = "capture-payments"

// StudioWidget renders the values to enter in Studio's "Capture Payments"
// widget for this <Pay>, one field per line in the order of the guide's table,
// so that a no-code integration gets the same settings as the TwiML.
func (p *Pay) StudioWidget() []byte {
	var b bytes.Buffer
	b.WriteString("Studio \"Capture Payments\" widget (" + StudioWidgetType + ")\n")
	line := func(label, value string) {
		fmt.Fprintf(&b, "  %-25s%s\n", label+":", value)
	}
	labels := make([]string, 0, len(cardTypes))
	for _, t := range p.CardTypes() {
		labels = append(labels, studioCardTypeLabel(t))
	}
	line("Valid Card Types", strings.Join(labels, ", "))
	line("Request Security Code", studioBool(p.SecurityCode))
	line("Request Postal Code", studioBool(p.PostalCode))
	line("Pay Connector", p.PaymentConnector)
	line("Payment Token Type", studioTokenType(p.TokenType))
	amount := p.ChargeAmount
	if cents, err := p.ChargeCents(); err == nil && cents == 0 {
		// Studio stores a card when the amount is empty; "0" is TwiML's spelling.
		amount = "(leave empty)"
	}
	line("Charge Card with Amount", amount)
	line("Currency", studioCurrency(p.Currency))
	method := p.PaymentMethod
	if method == "" {
		method = "credit-card"
	}
	line("Payment Method", method)
	if p.Description != "" {
		line("Description", p.Description)
	}
	label := "Parameters:"
	for _, prm := range p.Parameters {
		fmt.Fprintf(&b, "  %-25s%s = %s\n", label, prm.Name, prm.studioValue())
		label = "" // further parameters line up under the first
	}
	return b.Bytes()
}

// Names of the states StudioFlow writes.
const (
	StudioCaptureState = "capture_payment"
	studioGreeting     = "greeting"
	studioSucceeded    = "payment_succeeded"
	studioFailed       = "payment_failed"
)

// studioState is one state of a Studio flow definition, in the shape the
// Studio console exports and the Flows REST resource takes.
type studioState struct {
	Name        string             `json:"name"`
	Type        string             `json:"type"`
	Transitions []studioTransition `json:"transitions"`
	Properties  map[string]any     `json:"properties"`
}

type studioTransition struct {
	Next  string `json:"next,omitempty"`
	Event string `json:"event"`
}

// StudioFlow renders an importable Studio flow definition for this <Pay>: a
// Trigger whose incoming call plays a short greeting, the capture-payments
// widget set as the guide asks (the same values as the TwiML), and a
// say-play for success and for failure on the widget's transitions. It is
// indented JSON, so that equal models are equal bytes.
func (p *Pay) StudioFlow() []byte {
	offset := func(x, y int) map[string]any { return map[string]any{"x": x, "y": y} }
	say := func(name, text string, y int) studioState {
		return studioState{Name: name, Type: "say-play", Transitions: []studioTransition{{Event: "audioComplete"}},
			Properties: map[string]any{"offset": offset(40, y), "loop": 1, "say": text}}
	}
	cardTypes := make([]string, 0, len(p.CardTypes()))
	for _, t := range p.CardTypes() {
		if t == "mastercard" {
			t = "master-card" // Studio's spelling
		}
		cardTypes = append(cardTypes, t)
	}
	amount := strings.TrimSpace(p.ChargeAmount)
	if cents, err := p.ChargeCents(); err == nil && cents == 0 {
		amount = "" // Studio stores a card when the amount is empty
	}
	params := make([]map[string]string, 0, len(p.Parameters))
	for _, prm := range p.Parameters {
		params = append(params, map[string]string{"key": prm.Name, "value": prm.studioValue()})
	}
	method := strings.ToUpper(strings.ReplaceAll(p.PaymentMethod, "-", "_"))
	if method == "" {
		method = "CREDIT_CARD"
	}
	props := map[string]any{
		"offset":             offset(40, 460),
		"payment_connector":  p.PaymentConnector,
		"payment_amount":     amount,
		"currency":           strings.ToLower(orDefault(p.Currency, "usd")),
		"payment_token_type": orDefault(p.TokenType, "reusable"),
		"payment_method":     method,
		"security_code":      !strings.EqualFold(p.SecurityCode, "false"),
		"postal_code":        orDefault(p.PostalCode, "true"),
		"valid_card_types":   cardTypes,
		"timeout":            5,
		"max_attempts":       2,
		"parameters":         params,
	}
	if p.Description != "" {
		props["description"] = p.Description
	}
	greeting := "Please enter your card details to pay."
	success := "Thank you. Your payment was approved. Your confirmation code is {{widgets." + StudioCaptureState + ".PaymentConfirmationCode}}."
	if amount == "" {
		greeting = "Please enter the card you want to keep on file."
		success = "Thank you. Your card was saved."
	}
	flow := struct {
		Description  string         `json:"description"`
		States       []studioState  `json:"states"`
		InitialState string         `json:"initial_state"`
		Flags        map[string]any `json:"flags"`
	}{
		Description: "ivrpay: " + describeStudioFlow(p),
		States: []studioState{
			{Name: "Trigger", Type: "trigger", Properties: map[string]any{"offset": offset(0, 0)}, Transitions: []studioTransition{
				{Event: "incomingMessage"}, {Next: studioGreeting, Event: "incomingCall"},
				{Event: "incomingConversationMessage"}, {Event: "incomingRequest"}, {Event: "incomingParent"}}},
			{Name: studioGreeting, Type: "say-play", Properties: map[string]any{"offset": offset(40, 220), "loop": 1, "say": greeting},
				Transitions: []studioTransition{{Next: StudioCaptureState, Event: "audioComplete"}}},
			{Name: StudioCaptureState, Type: StudioWidgetType, Properties: props, Transitions: []studioTransition{
				{Next: studioSucceeded, Event: "success"}, {Next: studioFailed, Event: "maxFailedAttempts"},
				{Next: studioFailed, Event: "providerError"}, {Event: "payInterrupted"}, {Event: "hangup"},
				{Next: studioFailed, Event: "validationError"}}},
			say(studioSucceeded, success, 700),
			say(studioFailed, "Sorry, the payment could not be completed.", 940),
		},
		InitialState: "Trigger",
		Flags:        map[string]any{"allow_concurrent_calls": true},
	}
	b, _ := json.MarshalIndent(flow, "", "  ") // maps of strings, numbers and bools always encode
	return append(b, '\n')
}

func describeStudioFlow(p *Pay) string {
	if v, ok := p.Param(ParamPayinConfigID); ok {
		return fmt.Sprintf("charge %s for payin config %s", p.ChargeAmount, v)
	}
	if v, ok := p.Param(ParamPaymentMethodConfigID); ok {
		return "store a card for payment method config " + v
	}
	return "capture a card"
}

func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}

func studioCardTypeLabel(name string) string {
	for _, t := range cardTypes {
		if t.name == name || (name == "master-card" && t.name == "mastercard") {
			return t.studio
		}
	}
	return name
}

func studioBool(v string) string {
	switch strings.ToLower(v) {
	case "", "true":
		return "Yes"
	case "false":
		return "No"
	}
	return v
}

func studioTokenType(v string) string {
	switch strings.ToLower(v) {
	case "", "reusable":
		return "Reusable"
	case "one-time":
		return "One-time"
	}
	return v
}

func studioCurrency(v string) string {
	if v == "" || strings.EqualFold(v, "usd") {
		return "US Dollar (USD)"
	}
	return strings.ToUpper(v)
}

// studioStep is one capture-payments widget of a Studio flow, turned into the
// <Pay> it stands for so that lint applies the same rules to both.
type studioStep struct {
	name string
	pay  Pay
}

// parseStudioFlow reads a Studio flow JSON export and returns its
// capture-payments widgets. Property values are read leniently (a number or a
// boolean where a string is expected is taken as its text), since flows are
// edited by hand as well as exported.
func parseStudioFlow(doc []byte) ([]studioStep, error) {
	type definition struct {
		States []struct {
			Name       string                     `json:"name"`
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"states"`
	}
	var flow struct {
		definition
		// The Flows REST resource (and the twilio CLI) wrap the export in "definition".
		Definition *definition `json:"definition"`
	}
	if err := json.Unmarshal(doc, &flow); err != nil {
		return nil, fmt.Errorf("the document is not a Studio flow: %w", err)
	}
	if flow.States == nil && flow.Definition != nil {
		flow.definition = *flow.Definition
	}
	if flow.States == nil {
		return nil, errors.New("the document is not a Studio flow: it has no states")
	}
	var steps []studioStep
	for i, st := range flow.States {
		if st.Type != StudioWidgetType {
			continue
		}
		if st.Name == "" {
			st.Name = fmt.Sprintf("states[%d]", i) // findings must say where they are
		}
		props := st.Properties
		text := func(key string) string { return jsonText(props[key]) }
		p := Pay{
			PaymentConnector: text("payment_connector"),
			ChargeAmount:     text("payment_amount"),
			Currency:         text("currency"),
			TokenType:        text("payment_token_type"),
			SecurityCode:     text("security_code"),
			PostalCode:       text("postal_code"),
			Description:      text("description"),
			ValidCardTypes:   studioCardTypes(props["valid_card_types"]),
			// Studio exports the enum (CREDIT_CARD); <Pay> spells it credit-card.
			PaymentMethod: strings.ReplaceAll(strings.ToLower(text("payment_method")), "_", "-"),
		}
		var params []struct {
			Key   json.RawMessage `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if raw, ok := props["parameters"]; ok && json.Unmarshal(raw, &params) == nil {
			for _, prm := range params {
				p.Parameters = append(p.Parameters, Parameter{Name: jsonText(prm.Key), Value: jsonText(prm.Value)})
			}
		}
		steps = append(steps, studioStep{name: st.Name, pay: p})
	}
	return steps, nil
}

// studioCardTypes joins the valid_card_types array (or takes a string as is)
// into <Pay>'s space-separated form, with Studio's "master-card" spelled as
// Twilio's TwiML spells it.
func studioCardTypes(raw json.RawMessage) string {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return jsonText(raw)
	}
	names := make([]string, 0, len(list))
	for _, item := range list {
		name := strings.ToLower(strings.TrimSpace(jsonText(item)))
		if name == "master-card" {
			name = "mastercard"
		}
		if name != "" {
			names = append(names, name)
		}
	}
	return strings.Join(names, " ")
}

// jsonText is a JSON scalar's text: a string's content, a number's or a
// boolean's literal, "" for null or absence, and the raw JSON otherwise.
func jsonText(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	if s, _, err := scalar(raw); err == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// studioValue is a parameter's value as Studio writes it: the caller's
// number is {{trigger.call.From}} in a flow, {{From}} in TwiML.
func (prm Parameter) studioValue() string {
	if prm.Value == CallerValue {
		return StudioCallerValue
	}
	return prm.Value
}
