package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/subs-engine/subs/workers/publish"
)

// tailStream is the JetStream stream tail reads: the publisher's default.
const tailStream = "SUBS_EVENTS"

// tailURL is the NATS server tail connects to: NATS_URL, or the embedded
// server of a local `subs serve`.
func (c Config) tailURL() (string, error) {
	if c.NATSURL != "" {
		return c.NATSURL, nil
	}
	if c.NATSPort <= 0 {
		return "", errors.New("tail: give --nats-url (or --nats-port): there is no fixed port to find the embedded server on")
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", c.NATSPort), nil
}

// runTail is `subs tail`: a durable JetStream consumer (Config.TailDurable,
// explicit acks) on Config.TailSubject that prints one line per event as it
// arrives, acking it once printed, until ctx is done. It is how another
// system subscribes: a tail started again with the same durable name
// resumes after the last event it acked; a redelivered event prints again,
// so a real consumer deduplicates by event id (DESIGN §7).
func (m *Main) runTail(ctx context.Context) error {
	url, err := m.Config.tailURL()
	if err != nil {
		return err
	}
	log := m.logger()
	nc, err := nats.Connect(url, nats.Name("subs tail"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("tail: disconnected from NATS; reconnecting", slog.Any("err", err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("tail: reconnected to NATS") }))
	if err != nil {
		return fmt.Errorf("tail: connect to NATS at %s (is `subs serve` running, or NATS_URL set?): %w", redactNATSURL(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	setup, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	consumer, err := js.CreateOrUpdateConsumer(setup, tailStream, jetstream.ConsumerConfig{
		Durable:       m.Config.TailDurable,
		Description:   "subs tail",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: m.Config.TailSubject,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("tail: NATS at %s has no stream %s yet: start `subs serve` (its publisher creates it)", redactNATSURL(url), tailStream)
	}
	if err != nil {
		return fmt.Errorf("tail: durable consumer %s on %s: %w", m.Config.TailDurable, tailStream, err)
	}
	it, err := consumer.Messages()
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	stopped := context.AfterFunc(ctx, it.Stop)
	defer stopped()
	log.Info("tail: following", slog.String("nats", redactNATSURL(url)), slog.String("durable", m.Config.TailDurable),
		slog.String("subject", m.Config.TailSubject))
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil // ctx is done
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		if _, err := fmt.Fprintln(m.Stdout, tailLine(msg)); err != nil {
			return err
		}
		if err := msg.Ack(); err != nil {
			log.Warn("tail: ack failed; the event will be delivered again", slog.Any("err", err))
		}
	}
}

// tailLine renders one event: time, subject, stream, version, event id, data.
func tailLine(msg jetstream.Msg) string {
	h := msg.Headers()
	at := h.Get(publish.HeaderTime)
	if at == "" {
		if md, err := msg.Metadata(); err == nil {
			at = md.Timestamp.UTC().Format(time.RFC3339Nano)
		}
	}
	return fmt.Sprintf("%s  %s  %s v%s  %s  %s", at, msg.Subject(), h.Get(publish.HeaderSubject),
		h.Get(publish.HeaderStreamVersion), h.Get(publish.HeaderID), msg.Data())
}
