// Command subs is the subscription lifecycle engine: one binary whose
// subcommands serve the API, migrate the database and manage a private
// PostgreSQL cluster. Run `subs help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/subs-engine/subs/eventstore/pgcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run parses args, runs the chosen subcommand and returns the exit code:
// 0 on success or help, 2 on a usage error, else the error's ExitCode.
func run(ctx context.Context, args []string) int {
	m := NewMain()
	defer m.Close()
	if err := m.ParseFlags(ctx, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "subs:", err)
		return 2
	}
	slog.SetDefault(m.Logger) // for packages that log through the default logger
	if err := m.Run(ctx); err != nil {
		printError(err)
		return ExitCode(err)
	}
	return 0
}

// printError writes err for a person to read: a missing-PostgreSQL error as
// is (it says what to install), anything else prefixed with the program.
func printError(err error) {
	var noBinaries *pgcluster.NoBinariesError
	if errors.As(err, &noBinaries) {
		fmt.Fprintln(os.Stderr, noBinaries.Error())
		return
	}
	fmt.Fprintln(os.Stderr, "subs:", err)
}
