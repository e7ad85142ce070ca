// Package redact keeps secrets out of logs, errors and help text: the
// passwords and tokens inside connection URLs (--database-url, --nats-url,
// --redis-url, --smtp-url) and the --secret itself.
package redact

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
)

// Mask replaces a secret.
const Mask = "xxxxx"

// URL returns raw with the password of its userinfo masked, and the user too
// where it is a token (nats://token@host); a comma-separated list of URLs
// (NATS) is masked URL by URL. Something that does not parse as a URL is
// masked whole if it has userinfo at all.
func URL(raw string) string {
	if strings.Contains(raw, ",") {
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			parts[i] = URL(p)
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return Mask
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), Mask)
	} else if tokenUser(u.Scheme) {
		u.User = url.User(Mask)
	}
	return u.String()
}

// Secrets returns the secret parts of the given URLs (passwords, and the
// user of a token URL), for a Handler to mask wherever they appear.
func Secrets(urls ...string) []string {
	var out []string
	for _, raw := range urls {
		for _, p := range strings.Split(raw, ",") {
			u, err := url.Parse(strings.TrimSpace(p))
			if err != nil {
				// Not a URL Go accepts, but an error will quote it whole:
				// mask whatever sits between "://" and the last "@".
				if _, rest, ok := strings.Cut(p, "://"); ok {
					if i := strings.LastIndex(rest, "@"); i > 0 {
						info := rest[:i]
						if _, pw, ok := strings.Cut(info, ":"); ok {
							out = append(out, pw)
						} else {
							out = append(out, info)
						}
					}
				}
				continue
			}
			if u.User == nil {
				continue
			}
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw, url.QueryEscape(pw))
			} else if tokenUser(u.Scheme) {
				out = append(out, u.User.Username())
			}
		}
	}
	return out
}

func tokenUser(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

// MinLen is the shortest secret that String and Handler mask: masking a one-
// or two-letter string everywhere would garble every log line, and a
// password that short protects nothing anyway.
const MinLen = 4

// String masks every secret in s.
func String(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= MinLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// Handler wraps h so that no secret reaches the log: the message and every
// string, error and stringer attribute are masked.
func Handler(h slog.Handler, secrets []string) slog.Handler {
	var keep []string
	for _, s := range secrets {
		if len(s) >= MinLen {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return h
	}
	return &handler{h: h, secrets: keep}
}

type handler struct {
	h       slog.Handler
	secrets []string
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, String(r.Message, h.secrets), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, String(v.String(), h.secrets))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, String(x.Error(), h.secrets))
		case interface{ String() string }:
			return slog.String(a.Key, String(x.String(), h.secrets))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return &handler{h: h.h.WithAttrs(out), secrets: h.secrets}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), secrets: h.secrets}
}
