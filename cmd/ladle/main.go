// Command ladle runs Ladle, online ordering for restaurants.
//
//	ladle serve [flags]    run the server (API, storefront, staff pages, workers)
//	ladle migrate [flags]  apply database migrations and exit
//	ladle bench NAME       run a benchmark (see ladle bench --help)
//	ladle dev cluster      a loopback cluster with load (see ladle dev --help)
//	ladle version          print the version
//
// Every flag has a LADLE_* environment variable (--database-url is
// LADLE_DATABASE_URL); a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ladle-dev/ladle/internal/redact"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ladle:", err)
		os.Exit(1)
	}
}

const usage = `Ladle: online ordering for restaurants.

Usage:
  ladle serve [flags]     run the server; with no configuration it runs on the
                          embedded default (SQLite in ./data, in-process broker,
                          cache and mailbox)
  ladle migrate [flags]   apply database migrations and exit
  ladle token create --restaurant SLUG --email STAFF_EMAIL
                          print a staff API token (also: token list, token revoke)
  ladle version           print the version

Run "ladle serve --help" for the flags. Every flag can also be set with its
LADLE_* environment variable, e.g. --database-url is LADLE_DATABASE_URL.
`

// run is the whole program, with its environment passed in so tests can run
// it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch cmd := args[1]; cmd {
	case "serve", "migrate":
		cfg, err := parseConfig(cmd, args[2:], getenv, stderr)
		if errors.Is(err, errHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		if cmd == "migrate" {
			if err := migrate(ctx, cfg, stdout); err != nil {
				return errors.New(redact.String(err.Error(), cfg.secrets()))
			}
			return nil
		}
		// Whatever fails, its message must not carry a credential (a URL
		// that did not parse is quoted whole in Go's error).
		if err := serve(ctx, cfg, stdout, stderr); err != nil {
			return errors.New(redact.String(err.Error(), cfg.secrets()))
		}
		return nil
	case "bench":
		return runBench(ctx, args[2:], getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, args[2:], getenv, stdout, stderr) // dev.go
	case "token":
		return runToken(ctx, args[2:], getenv, stdout, stderr) // token.go
	case "version":
		fmt.Fprintln(stdout, "ladle", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
