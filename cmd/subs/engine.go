package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/subs-engine/subs/api"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/fulfilment"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/outbox"
	"github.com/subs-engine/subs/workers/renewal"
	"github.com/subs-engine/subs/workers/schedule"
)

// outboxInterval is how often serve drains the e-mail outbox.
const outboxInterval = time.Second

// engine is what serve runs besides HTTP: the event log, the projections
// that keep the read models, the payment gateway and the e-mail outbox.
type engine struct {
	store    *eventstore.Store
	types    *eventstore.EventTypes
	runner   *projections.Runner
	gateway  payment.Gateway
	catalog  *catalog.Catalog
	mail     mail.Sender
	mailDesc string // where e-mails go, for people

	renewals *renewal.Worker
	outbox   *outbox.Worker // set by startEngine, once the public URL is known
	schedule *schedule.Scheduler
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// openEngine builds the engine on db and adds its /v1 routes to server.
// Start runs its background parts.
func (m *Main) openEngine(ctx context.Context, db *database, server *api.Server, secret []byte) (*engine, error) {
	e := &engine{store: eventstore.New(db.pool, eventstore.Config{SecretKey: secret}), types: eventstore.NewEventTypes()}
	e.types.Register(1, events.All()...)
	var err error
	e.runner, err = projections.NewRunner(projections.RunnerConfig{Store: e.store, Types: e.types, Logger: m.logger(),
		Projections: projections.All()})
	if err != nil {
		return nil, err
	}
	if e.gateway, err = m.openGateway(ctx, db); err != nil {
		return nil, err
	}
	if e.mail, e.mailDesc, err = m.openMail(); err != nil {
		return nil, err
	}
	cat, err := catalogdata.Load()
	if err != nil {
		return nil, err
	}
	e.catalog = cat
	e.renewals, err = renewal.New(renewal.Config{Store: e.store, Types: e.types, Gateway: e.gateway, Clock: m.Clock,
		Policy: policy.Default(), Logger: m.logger()})
	if err != nil {
		return nil, err
	}
	err = api.RegisterEngine(server, api.Engine{Store: e.store, Types: e.types, Projections: e.runner,
		Gateway: e.gateway, Catalog: cat, Renewals: e.renewals, SecretKey: secret, Logger: m.logger()})
	if err != nil {
		return nil, err
	}
	if e.schedule, err = m.newSchedule(e, server); err != nil {
		return nil, err
	}
	if m.Config.Clock == ClockSimulated {
		api.RegisterTestClock(server, e.schedule)
	}
	return e, nil
}

// newSchedule is the cron schedule of the periodic jobs (DESIGN §6): the
// renewal runs, and the purge of expired idempotency keys. Under a
// simulated clock, an advance also stops at every instant the due-work
// schedule names, each run waits until the read models show what it did,
// and the e-mail outbox is drained at each run, so that advancing the clock
// runs every due action in time order, as if the time had passed (TIM-2).
func (m *Main) newSchedule(e *engine, server *api.Server) (*schedule.Scheduler, error) {
	simulated := m.Config.Clock == ClockSimulated
	jobs := []schedule.Job{
		{Name: "renewals", Run: func(ctx context.Context, now time.Time) error {
			res, err := e.renewals.Run(ctx, now)
			if err != nil || !simulated {
				return err
			}
			return e.runner.WaitFor(ctx, res.Last)
		}},
		{Name: "purge-idempotency-keys", Run: func(ctx context.Context, now time.Time) error {
			_, err := server.PurgeIdempotencyKeys(ctx, now)
			return err
		}},
	}
	cfg := schedule.Config{Clock: m.Clock, Logger: m.logger(), Metrics: server.Registry(), Spec: m.Config.Schedule,
		SimulatedSpec: m.Config.SimulatedSchedule}
	if simulated {
		jobs = append(jobs, schedule.Job{Name: "outbox", Run: func(ctx context.Context, now time.Time) error {
			if e.outbox == nil {
				return nil
			}
			_, err := e.outbox.Drain(ctx)
			return err
		}})
		cfg.DueAt = func(ctx context.Context, after time.Time) (time.Time, bool, error) {
			return renewal.NextDue(ctx, e.store.Pool(), after)
		}
		cfg.DueNow = func(ctx context.Context, now time.Time) (bool, error) {
			return renewal.DueNow(ctx, e.store.Pool(), now)
		}
	}
	cfg.Jobs = jobs
	return schedule.New(cfg)
}

// startEngine runs the engine's projections and e-mail outbox until close.
func (m *Main) startEngine(e *engine, server *api.Server, secret []byte, publicURL string) error {
	accounts, err := eventstore.NewCommandHandler(account.Decider, eventstore.HandlerConfig{
		Store: e.store, Types: e.types, Clock: m.Clock, Policy: policy.Default()})
	if err != nil {
		return err
	}
	templates, err := mail.NewTemplates()
	if err != nil {
		return err
	}
	orders, err := eventstore.NewCommandHandler(order.Decider, eventstore.HandlerConfig{
		Store: e.store, Types: e.types, Clock: m.Clock, Policy: policy.Default()})
	if err != nil {
		return err
	}
	subs, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{
		Store: e.store, Types: e.types, Clock: m.Clock, Policy: policy.Default()})
	if err != nil {
		return err
	}
	// Leases on the system clock: with --clock=simulated, the outbox loop and
	// the advances' outbox job drain at once, and an advance must not end
	// the leases of the messages the loop is sending (EML-2).
	e.outbox, err = outbox.New(outbox.Config{Store: e.store, Accounts: accounts, Orders: orders, Subscriptions: subs, Sender: e.mail,
		Templates: templates, Clock: m.Clock, LeaseClock: systemClock{}, Policy: policy.Default(), SecretKey: secret, PublicURL: publicURL,
		Logger: m.logger()})
	if err != nil {
		return err
	}
	pm, err := fulfilment.New(fulfilment.Config{Store: e.store, Types: e.types, Catalog: e.catalog, Clock: m.Clock,
		Policy: policy.Default(), Logger: m.logger()})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	if err := e.schedule.Start(ctx); err != nil {
		stop()
		return err
	}
	e.wg.Go(func() { pm.Run(ctx) })
	e.wg.Go(func() { e.runner.Run(ctx) })
	e.wg.Go(func() { e.outbox.Run(ctx, outboxInterval) })
	return nil
}

// close stops the background parts and waits for them.
func (e *engine) close() {
	if e.stop != nil {
		e.stop()
	}
	if e.schedule != nil {
		e.schedule.Stop()
	}
	e.wg.Wait()
}

// openGateway connects to the payment gateway at Config.GatewayURL, or runs
// the sandbox in-process on the engine's database and clock.
func (m *Main) openGateway(ctx context.Context, db *database) (payment.Gateway, error) {
	if m.Config.GatewayURL != "" {
		client, err := gateway.NewHTTPClient(m.Config.GatewayURL, &http.Client{Timeout: 30 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("gateway URL (--gateway-url, SUBS_GATEWAY_URL): %w", err)
		}
		return client, nil
	}
	return gateway.NewSandbox(ctx, db.pool, gateway.SandboxConfig{Clock: m.Clock})
}

// openMail sends by SMTP at Config.SMTPURL, or writes a maildir under the
// data directory.
func (m *Main) openMail() (mail.Sender, string, error) {
	s, err := mail.NewSender(m.Config.SMTPURL, m.Config.DataDir, "")
	if err != nil {
		return nil, "", err
	}
	if m.Config.SMTPURL != "" {
		return s, "SMTP " + redactDatabaseURL(m.Config.SMTPURL), nil
	}
	dir, err := filepath.Abs(filepath.Join(m.Config.DataDir, "mail"))
	if err != nil {
		return nil, "", err
	}
	return s, "maildir " + filepath.Join(dir, "new"), nil
}

// openStore returns the event log on db, with the engine's secret key, which
// the personal fields of events need (AUD-5).
func (m *Main) openStore(db *database) (*eventstore.Store, error) {
	secret, err := m.secretKey()
	if err != nil {
		return nil, err
	}
	return eventstore.New(db.pool, eventstore.Config{SecretKey: secret}), nil
}

// secretKeyFile is where serve keeps the engine's secret key when
// SUBS_SECRET_KEY is not set.
const secretKeyFile = "secret.key"

// secretKey returns the engine's 32-byte secret key (reset tokens, stored
// idempotent answers): Config.SecretKey when set (hex or base64), else the
// one in the data directory, made on first start. It must stay the same
// across restarts and processes.
func (m *Main) secretKey() ([]byte, error) {
	if s := strings.TrimSpace(m.Config.SecretKey); s != "" {
		return parseSecretKey(s)
	}
	path := filepath.Join(m.Config.DataDir, secretKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return parseSecretKey(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the secret key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o755); err != nil {
		return nil, err
	}
	// O_EXCL: a second process starting at once keeps the first one's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return m.secretKey()
	}
	if err != nil {
		return nil, fmt.Errorf("write the secret key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("write the secret key: %w", err)
	}
	m.logger().Info("made the engine's secret key", "file", path)
	return key, f.Sync()
}

func parseSecretKey(s string) ([]byte, error) {
	for _, decode := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawURLEncoding.DecodeString} {
		if b, err := decode(s); err == nil && len(b) >= 32 {
			return b, nil
		}
	}
	return nil, errors.New("secret key (SUBS_SECRET_KEY or <data-dir>/secret.key): want at least 32 bytes, hex or base64")
}
