// Package publish publishes every event of the log on NATS JetStream, in
// commit order, through Watermill's NATS JetStream publisher (DESIGN §7,
// DOMAIN PUB-1 and PUB-2).
//
// The publisher follows the global log from a checkpoint kept in PostgreSQL
// (table subscription_checkpoints, under Config.Name). It reads a batch,
// publishes each event and waits for JetStream's ack before the next one, and
// only then saves the checkpoint, in a short transaction: no database
// transaction stays open across NATS I/O, and an event is never counted as
// published before JetStream has stored it. A crash between the acks and the
// checkpoint republishes at most one batch; each message's Nats-Msg-Id is its
// event id, so JetStream drops the repeats inside its duplicate window, and
// consumers deduplicate by event id beyond it.
//
// Only one publisher is active at a time per database and Name, so order
// holds with several engine processes: the active one holds a session-level
// PostgreSQL advisory lock on a dedicated connection, and the others stand by,
// trying the lock every StandbyInterval. The checkpoint is saved on the lock's
// connection, so a publisher that lost its lock with its connection cannot
// move the checkpoint.
package publish

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/subs-engine/subs/eventstore"
)

// Config configures a Publisher. The zero value of every optional field
// takes the default its comment names.
type Config struct {
	// Store is the event log to publish. Required.
	Store *eventstore.Store
	// Connect dials a new NATS connection. Each Watermill publisher gets a
	// connection of its own, because closing the publisher closes it
	// (DESIGN §11); after a NATS failure the publisher closes its connection
	// and calls Connect again. Required.
	Connect func() (*nats.Conn, error)
	// Name is the publisher's checkpoint name in subscription_checkpoints
	// and the key of its advisory lock. Default "publisher".
	Name string
	// Stream is the JetStream stream to publish into, created or updated
	// when the publisher becomes active.
	Stream StreamConfig
	// BatchSize is the most events published between two checkpoint
	// saves: a crash republishes at most this many. Default 500.
	BatchSize int
	// PollInterval is how long the publisher waits, once caught up, before
	// reading the log again. Default 100ms.
	PollInterval time.Duration
	// StandbyInterval is how often a standing-by publisher tries to take
	// over, and how long it waits after a failure before trying again.
	// Default 1s.
	StandbyInterval time.Duration
	// PublishTimeout bounds the wait for one JetStream ack. Default 5s.
	PublishTimeout time.Duration
	// Metrics, when set, receives the publisher's metrics:
	// subs_publisher_published_total, subs_publisher_lag_events,
	// subs_publisher_active and subs_publisher_errors_total. Default: none
	// registered.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "publisher"
	}
	c.Stream.setDefaults()
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.StandbyInterval == 0 {
		c.StandbyInterval = time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
}

// Validate reports the first invalid field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("missing Store: the event log to publish")
	case c.Connect == nil:
		return errors.New("missing Connect: a function that dials a new NATS connection")
	case c.Name == "":
		return errors.New("missing Name: the checkpoint and lock name")
	case c.BatchSize < 1:
		return fmt.Errorf("BatchSize: %d must be positive", c.BatchSize)
	case c.PollInterval <= 0:
		return fmt.Errorf("PollInterval: %s must be positive", c.PollInterval)
	case c.StandbyInterval <= 0:
		return fmt.Errorf("StandbyInterval: %s must be positive", c.StandbyInterval)
	case c.PublishTimeout <= 0:
		return fmt.Errorf("PublishTimeout: %s must be positive", c.PublishTimeout)
	}
	return c.Stream.Validate()
}

// Publisher publishes the event log on JetStream. Run it once; it is safe
// for concurrent use by Active and Published.
type Publisher struct {
	cfg     Config
	log     *slog.Logger
	wmLog   watermill.LoggerAdapter
	metrics *metrics
	lockKey int32

	active    atomic.Bool
	published atomic.Int64
}

// New applies cfg's defaults, validates it and returns a publisher that does
// nothing until Run. A nil logger discards. It fails when cfg is invalid or
// its metrics cannot be registered (say, twice on one registry).
func New(cfg Config, logger *slog.Logger) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("publish: invalid config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logger = logger.With(slog.String("worker", "publisher"), slog.String("name", cfg.Name))
	m := newMetrics()
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(m); err != nil {
			return nil, fmt.Errorf("publish: register metrics: %w", err)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(cfg.Name))
	return &Publisher{
		cfg:     cfg,
		log:     logger,
		wmLog:   watermill.NewSlogLogger(logger),
		metrics: m,
		lockKey: int32(h.Sum32()),
	}, nil
}

// lockClass is the first key of the publisher's advisory lock (two int4
// keys: a key space apart from the single-bigint locks of the appends).
const lockClass = 0x73756273 // "subs"

// Active reports whether this publisher holds the lock and publishes.
func (p *Publisher) Active() bool { return p.active.Load() }

// Published returns how many events this publisher has had acked by
// JetStream since New, republished ones included.
func (p *Publisher) Published() int64 { return p.published.Load() }

// Run stands by until it holds the publisher's advisory lock, then
// publishes the log until ctx is done, and returns nil then. Failures of
// PostgreSQL or NATS are logged and retried after StandbyInterval, from the
// last saved checkpoint; losing the lock's connection sends the publisher
// back to standing by. On return the lock is released and the checkpoint
// records every event JetStream acked.
func (p *Publisher) Run(ctx context.Context) error {
	var standingBy bool
	for ctx.Err() == nil {
		conn, locked, err := p.tryLock(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				p.metrics.errors.Inc()
				p.log.Warn("publisher: cannot reach PostgreSQL to take the lock; retrying", slog.Any("err", err))
			}
		case !locked:
			if !standingBy {
				p.log.Info("publisher: another publisher is active; standing by")
				standingBy = true
			}
		default:
			standingBy = false
			p.lead(ctx, conn)
		}
		if conn != nil {
			closeConn(conn)
		}
		sleep(ctx, p.cfg.StandbyInterval)
	}
	return nil
}

// tryLock opens a dedicated connection and tries the advisory lock on it.
// The caller closes the connection, which releases the lock.
func (p *Publisher) tryLock(ctx context.Context) (*pgx.Conn, bool, error) {
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Store.Pool().Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, err
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, int32(lockClass), p.lockKey).Scan(&locked); err != nil {
		return conn, false, err
	}
	return conn, locked, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx) // closing the session releases the lock either way
}

// lead publishes while this publisher holds the lock on conn, until ctx is
// done or conn fails. NATS failures are retried here, keeping the lock.
func (p *Publisher) lead(ctx context.Context, conn *pgx.Conn) {
	p.active.Store(true)
	p.metrics.active.Set(1)
	defer func() {
		p.active.Store(false)
		p.metrics.active.Set(0)
	}()
	p.log.Info("publisher: active", slog.String("stream", p.cfg.Stream.Name))
	for ctx.Err() == nil {
		err := p.session(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		p.metrics.errors.Inc()
		if conn.Ping(ctx) != nil {
			p.log.Warn("publisher: lost the lock's PostgreSQL connection; standing by", slog.Any("err", err))
			return
		}
		p.log.Warn("publisher: publishing failed; retrying from the checkpoint", slog.Any("err", err),
			slog.Duration("after", p.cfg.StandbyInterval))
		sleep(ctx, p.cfg.StandbyInterval)
	}
}

// session connects to NATS, makes sure the stream exists, and publishes
// from the saved checkpoint until ctx is done (nil) or something fails.
func (p *Publisher) session(ctx context.Context, conn *pgx.Conn) error {
	nc, err := p.cfg.Connect()
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	wm, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			AutoProvision:  false, // the stream is made once below; provisioning asks the server on every publish
			TrackMsgId:     true,  // Nats-Msg-Id = the message UUID = the event id
			ConnectOptions: []nats.JSOpt{nats.MaxWait(p.cfg.PublishTimeout)},
		},
	}, p.wmLog)
	if err != nil {
		nc.Close()
		return fmt.Errorf("watermill publisher: %w", err)
	}
	defer wm.Close() // closes nc
	ensureCtx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	err = EnsureStream(ensureCtx, nc, p.cfg.Stream)
	cancel()
	if err != nil {
		return err
	}
	cp, err := checkpoint(ctx, conn, p.cfg.Name)
	if err != nil {
		return err
	}
	for {
		events, err := p.cfg.Store.ReadAll(ctx, cp, p.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(events) == 0 {
			p.updateLag(ctx, cp)
			// Check the lock's connection while idle too, so that a lost
			// lock is noticed before the next batch.
			if err := conn.Ping(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("the lock's connection: %w", err)
			}
			if !sleep(ctx, p.cfg.PollInterval) {
				return nil
			}
			continue
		}
		acked, pubErr := p.publishBatch(ctx, wm, events)
		if acked > 0 {
			next := eventstore.Of(events[acked-1])
			// Save what JetStream acked even when ctx is done: a graceful
			// stop should republish nothing.
			saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := saveCheckpoint(saveCtx, conn, p.cfg.Name, next)
			cancel()
			if err != nil {
				return err
			}
			cp = next
			p.updateLag(ctx, cp)
		}
		if pubErr != nil {
			return pubErr
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// publishBatch publishes events one by one, each acked by JetStream before
// the next is sent, so they are stored in commit order. It stops early when
// ctx is done, and returns how many were acked.
func (p *Publisher) publishBatch(ctx context.Context, wm *wmnats.Publisher, events []eventstore.RecordedEvent) (int, error) {
	for i, e := range events {
		if ctx.Err() != nil {
			return i, nil
		}
		if err := wm.Publish(Subject(p.cfg.Stream.SubjectPrefix, e), NewMessage(e)); err != nil {
			return i, fmt.Errorf("publish event %s (position %d): %w", e.ID, e.Position, err)
		}
		p.published.Add(1)
		p.metrics.published.Inc()
	}
	return len(events), nil
}

// checkpoint reads the publisher's checkpoint on conn.
func checkpoint(ctx context.Context, conn *pgx.Conn, name string) (eventstore.Checkpoint, error) {
	var cp eventstore.Checkpoint
	err := conn.QueryRow(ctx, `SELECT transaction_id, global_position FROM subscription_checkpoints WHERE name = $1`, name).
		Scan(&cp.TransactionID, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Checkpoint{}, nil
	}
	if err != nil {
		return cp, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	return cp, nil
}

// saveCheckpoint records cp in a short transaction on conn, the lock's
// connection: if that connection is gone, so is the lock, and the save fails.
func saveCheckpoint(ctx context.Context, conn *pgx.Conn, name string, cp eventstore.Checkpoint) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		return eventstore.SaveCheckpoint(ctx, tx, name, cp)
	})
}

// updateLag sets the lag gauge from the log's highest position: one index
// lookup. Positions are neither dense nor in commit order, so the figure is
// approximate.
func (p *Publisher) updateLag(ctx context.Context, cp eventstore.Checkpoint) {
	var last int64
	if err := p.cfg.Store.Pool().QueryRow(ctx, `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&last); err != nil {
		return
	}
	p.metrics.lag.Set(float64(max(last-cp.Position, 0)))
}

// sleep waits d or until ctx is done, reporting whether the wait was whole.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
