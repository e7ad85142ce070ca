package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/redact"
)

const tokenUsage = `Usage:
  ladle token create --restaurant SLUG --email STAFF_EMAIL [--name LABEL] [database flags]
  ladle token list   --restaurant SLUG [database flags]
  ladle token revoke --restaurant SLUG --id ID [database flags]

A staff API token acts for that staff member at that restaurant, with the
member's role at the time of each request (campaigns need owner or
manager). It is printed once; only its hash is stored. Database flags are
serve's (--database-url, --data-dir, or their LADLE_* variables).
`

// runToken is "ladle token …".
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, tokenUsage)
		return nil
	}
	sub := args[0]
	own := map[string]string{"restaurant": "", "email": "", "name": "", "id": ""}
	var rest []string
	for i := 1; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if _, ok := own[name]; ok && strings.HasPrefix(args[i], "-") {
			if !hasValue {
				if i+1 >= len(args) {
					return fmt.Errorf("--%s needs a value", name)
				}
				i++
				value = args[i]
			}
			own[name] = value
			continue
		}
		rest = append(rest, args[i])
	}
	cfg, err := parseConfig("token", rest, getenv, stderr)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, tokenUsage)
		return nil
	}
	if err != nil {
		return err
	}
	if own["restaurant"] == "" {
		return errors.New("--restaurant is required\n" + tokenUsage)
	}
	err = tokenCommand(ctx, cfg, sub, own, stdout)
	if err != nil {
		return errors.New(redact.String(err.Error(), cfg.secrets()))
	}
	return nil
}

func tokenCommand(ctx context.Context, cfg *config, sub string, own map[string]string, stdout io.Writer) error {
	store, err := openStore(ctx, cfg, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer store.Close()
	r, err := store.RestaurantBySlug(ctx, own["restaurant"])
	if err != nil {
		return fmt.Errorf("restaurant %q: %w", own["restaurant"], err)
	}
	switch sub {
	case "create":
		u, err := store.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(own["email"])))
		if err != nil {
			return fmt.Errorf("staff member %q: %w", own["email"], err)
		}
		if msg := ladle.CheckText(own["name"], ladle.TextRule{Max: 100}); msg != "" {
			return fmt.Errorf("--name %s", msg)
		}
		token, hash := auth.NewAPIToken()
		t := &ladle.APIToken{RestaurantID: r.ID, UserID: u.ID, Name: own["name"]}
		if err := store.CreateAPIToken(ctx, t, hash); err != nil {
			if ladle.ErrorKind(err) == ladle.KindNotFound {
				return fmt.Errorf("%s is not a member of %s", u.Email, r.Slug)
			}
			return err
		}
		fmt.Fprintln(stdout, token)
		return nil
	case "list":
		list, err := store.APITokens(ctx, r.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-6s %-30s %-8s %-16s %-20s %s\n", "ID", "MEMBER", "ROLE", "NAME", "CREATED", "STATE")
		for _, t := range list {
			state := "active"
			if t.RevokedAt != nil {
				state = "revoked " + t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-6d %-30s %-8s %-16s %-20s %s\n", t.ID, t.Email, t.Role, t.Name, t.CreatedAt.Format(time.RFC3339), state)
		}
		return nil
	case "revoke":
		id, err := strconv.ParseInt(own["id"], 10, 64)
		if err != nil {
			return errors.New("--id must be a token id (ladle token list)")
		}
		if err := store.RevokeAPIToken(ctx, r.ID, id, time.Now()); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "revoked", id)
		return nil
	}
	return fmt.Errorf("unknown token command %q\n%s", sub, tokenUsage)
}
