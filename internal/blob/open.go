package blob

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Open returns the Store a URL names (the --blob-url flag):
//
//	file:///var/lib/ladle/blobs    a local folder (absolute)
//	file:data/blobs or data/blobs  a local folder (relative to the working directory)
//	s3://bucket[/prefix]?endpoint=host:port&region=eu-west-1&path_style=true&insecure=true
//
// For s3: endpoint defaults to s3.amazonaws.com; an endpoint written as
// "http://host:port" implies insecure. region defaults to $AWS_REGION, then
// $AWS_DEFAULT_REGION, then to asking the server. Credentials come from
// $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and $AWS_SESSION_TOKEN (the
// usual AWS variables), never from the URL, so the URL can be logged; with
// none set requests are anonymous. getenv is os.Getenv in production.
func Open(ctx context.Context, rawURL string, getenv func(string) string) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("blob: empty URL")
	}
	if !strings.Contains(rawURL, ":") {
		return NewLocal(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("blob: bad URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Opaque != "" { // file:data/blobs
			p = u.Opaque
		}
		if u.Host != "" && u.Host != "localhost" { // file://data/blobs, read as relative
			p = u.Host + p
		}
		if p == "" {
			return nil, fmt.Errorf("blob: %q names no folder", rawURL)
		}
		return NewLocal(p)
	case "s3":
		cfg, err := ParseS3URL(u, getenv)
		if err != nil {
			return nil, err
		}
		return NewS3(ctx, cfg)
	default:
		return nil, fmt.Errorf("blob: unknown scheme %q (want file or s3)", u.Scheme)
	}
}

// ParseS3URL reads an s3:// URL and the AWS environment variables into an
// S3Config (see Open for the form).
func ParseS3URL(u *url.URL, getenv func(string) string) (S3Config, error) {
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style", "insecure":
		default:
			return S3Config{}, fmt.Errorf("blob: unknown s3 URL parameter %q", k)
		}
	}
	cfg := S3Config{
		Bucket:          u.Host,
		Prefix:          strings.TrimPrefix(u.Path, "/"),
		Endpoint:        q.Get("endpoint"),
		Region:          q.Get("region"),
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
	}
	if cfg.Bucket == "" {
		return S3Config{}, fmt.Errorf("blob: %q names no bucket", u.Redacted())
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	switch {
	case cfg.Endpoint == "":
		cfg.Endpoint = "s3.amazonaws.com"
	case strings.HasPrefix(cfg.Endpoint, "http://"):
		cfg.Endpoint = strings.TrimPrefix(cfg.Endpoint, "http://")
		cfg.Insecure = true
	case strings.HasPrefix(cfg.Endpoint, "https://"):
		cfg.Endpoint = strings.TrimPrefix(cfg.Endpoint, "https://")
	}
	cfg.Endpoint = strings.TrimSuffix(cfg.Endpoint, "/")
	if cfg.Region == "" {
		cfg.Region = getenv("AWS_REGION")
	}
	if cfg.Region == "" {
		cfg.Region = getenv("AWS_DEFAULT_REGION")
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"path_style", &cfg.PathStyle}, {"insecure", &cfg.Insecure}} {
		if v := q.Get(b.name); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("blob: s3 URL parameter %s=%q is not a boolean", b.name, v)
			}
			*b.dst = on || *b.dst
		}
	}
	return cfg, nil
}
