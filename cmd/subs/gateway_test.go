package main_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	main "github.com/subs-engine/subs/cmd/subs"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/gateway"
)

func TestGateway_EndToEnd(t *testing.T) {
	t.Parallel()
	m, out := MustParse(t, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)},
		"gateway", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--shutdown-timeout", "5s",
		"--latency", "0s", "--failure-rate", "0", "--lost-response-rate", "0")
	srv := MustStartGateway(t, m, out, time.Minute)

	client, err := gateway.NewHTTPClient(srv.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	card, err := payment.NewCard("4242 4242 4242 4242", "123", "Ada Lovelace", 12, 2099-70, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	method, err := client.TokenizeCard(ctx, card)
	if err != nil {
		t.Fatalf("TokenizeCard: %v\nstderr:\n%s", err, out.stderr)
	}
	req := payment.ChargeRequest{IdempotencyKey: "subscription-1/period-1", Token: method.Token(), Amount: money.New(4999, money.EUR), Description: "renewal"}
	first, err := client.Charge(ctx, req)
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	again, err := client.Charge(ctx, req)
	if err != nil || again != first || first.Status != payment.Succeeded {
		t.Errorf("charges = %+v then %+v (%v), want one succeeded outcome twice", first, again, err)
	}
	entries, err := client.Charges(ctx, payment.ChargeFilter{})
	if err != nil || len(entries) != 1 {
		t.Errorf("ledger = %+v, %v; want one entry", entries, err)
	}
	resp, body := MustGet(t, srv.base+"/healthz")
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}

	srv.MustStop(t, 7*time.Second)
	if _, err := client.Charges(ctx, payment.ChargeFilter{}); !errors.Is(err, payment.ErrUnavailable) {
		t.Errorf("Charges after shutdown = %v, want ErrUnavailable", err)
	}
	logs := out.stderr.String()
	if strings.Contains(logs, card.Number()) {
		t.Errorf("stderr shows the card number:\n%s", logs) // rule SEC-3
	}
}

func TestGateway_Flags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for accepted
	}{
		{"defaults", nil, ""},
		{"all set", []string{"--latency", "250ms", "--failure-rate", "0.1", "--lost-response-rate", "1", "--seed", "7"}, ""},
		{"failure rate above 1", []string{"--failure-rate", "1.5"}, "failure-rate"},
		{"lost response rate not a number", []string{"--lost-response-rate", "often"}, "lost-response-rate"},
		{"negative latency", []string{"--latency", "-1s"}, "latency"},
		{"positional argument", []string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, _ := NewMain(t, nil)
			err := m.ParseFlags(context.Background(), append([]string{"gateway"}, tt.args...))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("ParseFlags: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseFlags = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}

	m, out := MustParse(t, nil, "help", "gateway")
	MustRun(t, m)
	for _, flag := range []string{"-addr", "127.0.0.1:8090", "-latency", "-failure-rate", "-lost-response-rate", "-seed", "-database-url"} {
		if !strings.Contains(out.stdout.String(), flag) {
			t.Errorf("help gateway lacks %s:\n%s", flag, out.stdout)
		}
	}
	m, out = MustParse(t, nil, "help")
	MustRun(t, m)
	if !strings.Contains(out.stdout.String(), "gateway") {
		t.Errorf("help does not list gateway:\n%s", out.stdout)
	}
}

// MustStartGateway runs m (parsed as gateway) and waits until it accepts
// HTTP connections. The gateway does not report its address through
// Main.HTTPAddr (that is the engine API's server), so it is read from the
// banner, as a person would.
func MustStartGateway(tb testing.TB, m *main.Main, out output, within time.Duration) *running {
	tb.Helper()
	r := mustStart(tb, m, out, within, "gateway")
	match := regexp.MustCompile(`gateway is serving at (http://\S+)`).FindStringSubmatch(out.stderr.String())
	if match == nil {
		tb.Fatalf("stderr lacks the banner with the gateway's URL:\n%s", out.stderr)
	}
	r.base = match[1]
	return r
}
