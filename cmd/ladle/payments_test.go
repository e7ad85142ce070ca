package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestPaymentFlags: --payment-provider stripe without a secret key is a
// clear error at start-up; the Stripe secrets never show in --help or in
// the log, whether they came from flags or the environment.
func TestPaymentFlags(t *testing.T) {
	t.Parallel()
	none := func(string) string { return "" }
	if c, err := parseConfig("serve", nil, none, io.Discard); err != nil || c.PaymentProvider != "test" {
		t.Fatalf("default provider: %+v, %v", c, err)
	}
	_, err := parseConfig("serve", []string{"--payment-provider", "stripe"}, none, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--stripe-secret-key") {
		t.Fatalf("stripe without a key: %v", err)
	}
	if _, err := parseConfig("serve", []string{"--payment-provider", "paypal"}, none, io.Discard); err == nil {
		t.Fatal("an unknown provider was accepted")
	}
	if _, err := parseConfig("serve", []string{"--stripe-platform-fee-bp", "-1"}, none, io.Discard); err == nil {
		t.Fatal("a negative fee was accepted")
	}

	const key, whsec = "sk_test_51SecretKeyValue", "whsec_SigningSecretValue"
	env := func(k string) string {
		return map[string]string{"LADLE_STRIPE_SECRET_KEY": key, "LADLE_STRIPE_WEBHOOK_SECRET": whsec}[k]
	}
	c, err := parseConfig("serve", []string{"--payment-provider", "stripe"}, env, io.Discard)
	if err != nil || c.StripeSecretKey != key || c.StripeWebhookSecret != whsec {
		t.Fatalf("keys from the environment: %v", err)
	}
	var logs bytes.Buffer
	newLogger(c, &logs).Error("stripe said no", "err", "invalid key "+key, "secret", whsec)
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), whsec) {
		t.Fatalf("a Stripe secret reached the log: %s", logs.String())
	}
	var help bytes.Buffer
	if _, err := parseConfig("serve", []string{"--stripe-secret-key", key, "--help"}, env, &help); err != errHelp {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"--payment-provider", "--stripe-secret-key", "--stripe-publishable-key", "--stripe-webhook-secret", "--stripe-api-url"} {
		if !strings.Contains(help.String(), flag) {
			t.Errorf("--help does not list %s", flag)
		}
	}
	if strings.Contains(help.String(), key) || strings.Contains(help.String(), whsec) {
		t.Fatalf("a Stripe secret in --help:\n%s", help.String())
	}
	if redactFlag("stripe-secret-key", key) == key || redactFlag("stripe-webhook-secret", whsec) == whsec {
		t.Fatal("the Stripe secrets are not masked where flags are shown")
	}
}
