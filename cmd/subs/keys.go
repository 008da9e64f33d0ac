package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/subs-engine/subs/api"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/eventstore"
)

// keysUsage is `subs keys`'s usage line after the command name.
const keysUsage = "mint --product CODE --term TERM [--platform P] --count N"

// maxMintCount bounds one batch, so that a typo in --count does not fill
// the log for an hour.
const maxMintCount = 100_000

// keysFlags are the flag groups of Config that `subs keys mint` takes after
// the action, besides its own.
const keysFlags = flagsDataDir | flagsDatabaseURL | flagsLog

// mintOptions are the flags of `subs keys mint`.
type mintOptions struct {
	product, term, platform string
	count                   int
}

// keysFlagSet returns the flag set of `subs keys mint`: its own flags bound
// to opts and Config's bound to cfg, so that they may come after the action
// (`subs keys mint --product NIS --database-url …`).
func keysFlagSet(opts *mintOptions, cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("subs keys mint", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&opts.product, "product", "", "catalog `code` of the product, e.g. NIS (required)")
	fs.StringVar(&opts.term, "term", "", "`term`: annual, monthly or trial (required)")
	fs.StringVar(&opts.platform, "platform", "", "`platform`: windows or mac; default the product's first")
	fs.IntVar(&opts.count, "count", 0, "how many `keys` to mint (required, 1 to 100000)")
	cfg.bindFlags(fs, keysFlags)
	return fs
}

// keysArgs checks `subs keys`'s arguments: the action mint and its flags,
// which ParseFlags leaves to the action because they follow it.
func keysArgs(args []string) error {
	if len(args) == 0 || args[0] != "mint" {
		return errors.New("say mint, e.g. `subs keys mint --product NIS --term annual --count 10`")
	}
	var opts mintOptions
	var cfg Config
	cfg.setDefaults()
	fs := keysFlagSet(&opts, &cfg, io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	_, err := opts.batch()
	return err
}

// batch resolves the options against the shipped catalog.
func (o mintOptions) batch() (api.RetailBatch, error) {
	var b api.RetailBatch
	if o.product == "" || o.term == "" {
		return b, errors.New("--product and --term are required")
	}
	if o.count < 1 || o.count > maxMintCount {
		return b, fmt.Errorf("--count must be 1 to %d, got %d", maxMintCount, o.count)
	}
	cat, err := catalogdata.Load()
	if err != nil {
		return b, err
	}
	if b.Product, err = cat.Product(o.product); err != nil {
		return b, fmt.Errorf("--product: %w", err)
	}
	if b.Term, err = catalog.ParseTerm(o.term); err != nil {
		return b, fmt.Errorf("--term: %w", err)
	}
	if !b.Product.Sells(b.Term) {
		return b, fmt.Errorf("--term: %s is sold under %v, not %s", o.product, b.Product.Terms(), b.Term)
	}
	if o.platform != "" {
		if b.Platform, err = catalog.ParsePlatform(o.platform); err != nil {
			return b, fmt.Errorf("--platform: %w", err)
		}
		if !b.Product.RunsOn(b.Platform) {
			return b, fmt.Errorf("--platform: %s runs on %v, not %s", o.product, b.Product.Platforms(), b.Platform)
		}
	}
	b.Count = o.count
	return b, nil
}

// runKeys is `subs keys mint`: it creates a retailer's batch of boxed keys —
// unregistered subscriptions starting now (the system clock), automatic
// renewal off, recorded by the system with reason "retail batch" — and
// prints one line per key: KEY SERIAL SUBSCRIPTION_ID. It migrates the
// database first, as serve does, so that a fresh one can take the batch.
func (m *Main) runKeys(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	var opts mintOptions
	cfg := m.Config
	if err := keysFlagSet(&opts, &cfg, m.Stderr).Parse(m.args[1:]); err != nil {
		return &usageError{"keys: " + err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	m.Config, m.Logger = cfg, newLogger(m.Stderr, cfg)
	b, err := opts.batch()
	if err != nil {
		return &usageError{"keys: " + err.Error()}
	}
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	if _, _, err := m.migrateDatabase(ctx, db); err != nil {
		return err
	}
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	minter, err := api.NewKeyMinter(api.KeyMinterConfig{Store: eventstore.New(db.pool, eventstore.Config{}), Types: types,
		Clock: systemClock{}, Policy: policy.Default()})
	if err != nil {
		return err
	}
	keys, err := minter.Mint(ctx, b)
	for _, k := range keys { // the keys made before a failure exist: show them
		if _, werr := fmt.Fprintf(m.Stdout, "%s %s %s\n", k.Key, k.Serial, k.SubscriptionID); werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		return fmt.Errorf("minted %d of %d keys: %w", len(keys), b.Count, err)
	}
	return nil
}
