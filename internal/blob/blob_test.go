package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"

	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
)

// s3Server starts an S3-protocol server (gofakes3 over real HTTP) on
// 127.0.0.1 with one bucket, and returns its endpoint host:port and the
// backend so tests can check what landed where.
func s3Server(t *testing.T, bucket string) (*httptest.Server, *s3mem.Backend) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return srv, backend
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var awsEnv = env(map[string]string{
	"AWS_ACCESS_KEY_ID":     "ladle-test",
	"AWS_SECRET_ACCESS_KEY": "ladle-test-secret",
	"AWS_REGION":            "us-east-1",
})

// stores runs fn against every implementation, each through Open with the
// URL an operator would write.
func stores(t *testing.T, fn func(t *testing.T, s blob.Store)) {
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		s, err := blob.Open(t.Context(), "file://"+t.TempDir(), awsEnv)
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		srv, _ := s3Server(t, "menu-images")
		u := "s3://menu-images/ladle?endpoint=" + url.QueryEscape(srv.URL) + "&path_style=true"
		s, err := blob.Open(t.Context(), u, awsEnv)
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
}

func put(t *testing.T, s blob.Store, key, ct string, body []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body)), ct); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func get(t *testing.T, s blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return b, info
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s blob.Store) {
		ctx := t.Context()
		body := bytes.Repeat([]byte("ladle "), 50_000) // 300 kB, more than one read
		put(t, s, "img/abc.png", "image/png", body)

		got, info := get(t, s, "img/abc.png")
		if !bytes.Equal(got, body) {
			t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(body))
		}
		if info.Key != "img/abc.png" || info.Size != int64(len(body)) || info.ContentType != "image/png" || info.ModTime.IsZero() {
			t.Errorf("Get info = %+v", info)
		}
		st, err := s.Stat(ctx, "img/abc.png")
		if err != nil || st.Size != info.Size || st.ContentType != "image/png" {
			t.Errorf("Stat = %+v, %v", st, err)
		}

		// Put replaces.
		put(t, s, "img/abc.png", "image/png", []byte("new"))
		if got, _ := get(t, s, "img/abc.png"); string(got) != "new" {
			t.Errorf("after overwrite Get = %q", got)
		}

		// Delete, twice: both succeed, and the blob is gone.
		for range 2 {
			if err := s.Delete(ctx, "img/abc.png"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
		if _, _, err := s.Get(ctx, "img/abc.png"); !blob.IsNotFound(err) || ladle.ErrorCode(err) != ladle.CodeNotFound {
			t.Errorf("Get after Delete = %v, want not_found", err)
		}
	})
}

func TestMissingAndInvalid(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s blob.Store) {
		ctx := t.Context()
		if _, _, err := s.Get(ctx, "img/none.jpg"); ladle.ErrorKind(err) != ladle.KindNotFound {
			t.Errorf("Get missing = %v, want not found", err)
		}
		if _, err := s.Stat(ctx, "img/none.jpg"); ladle.ErrorKind(err) != ladle.KindNotFound {
			t.Errorf("Stat missing = %v, want not found", err)
		}
		put(t, s, "a", "text/plain", []byte("x"))
		if _, err := s.Stat(ctx, "a/b"); ladle.ErrorKind(err) != ladle.KindNotFound {
			t.Errorf("Stat under a blob = %v, want not found", err)
		}
		for _, key := range []string{"", "/img/a.jpg", "img/", "img//a.jpg", "../etc/passwd", "img/../../x", ".hidden",
			"img/.tmp-1", "a b.jpg", "img\\a.jpg", "é.jpg", strings.Repeat("a", blob.MaxKeyLen+1)} {
			err := s.Put(ctx, key, strings.NewReader("x"), 1, "text/plain")
			if ladle.ErrorCode(err) != blob.CodeInvalidKey {
				t.Errorf("Put(%q) = %v, want %s", key, err, blob.CodeInvalidKey)
			}
			if _, _, err := s.Get(ctx, key); ladle.ErrorCode(err) != blob.CodeInvalidKey {
				t.Errorf("Get(%q) = %v, want %s", key, err, blob.CodeInvalidKey)
			}
			if err := s.Delete(ctx, key); ladle.ErrorCode(err) != blob.CodeInvalidKey {
				t.Errorf("Delete(%q) = %v, want %s", key, err, blob.CodeInvalidKey)
			}
		}
	})
}

func TestShortBodyStoresNothing(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s blob.Store) {
		ctx := t.Context()
		put(t, s, "img/keep.jpg", "image/jpeg", []byte("old"))
		err := s.Put(ctx, "img/keep.jpg", strings.NewReader("12345"), 10, "image/jpeg")
		if ladle.ErrorCode(err) != blob.CodeSizeMismatch {
			t.Fatalf("short Put = %v, want %s", err, blob.CodeSizeMismatch)
		}
		if got, _ := get(t, s, "img/keep.jpg"); string(got) != "old" {
			t.Errorf("after a failed Put the blob is %q, want the old one", got)
		}
		// A reader that fails is reported as its own error, and stores nothing.
		boom := errors.New("boom")
		err = s.Put(ctx, "img/new.jpg", io.MultiReader(strings.NewReader("12"), errReader{boom}), 10, "image/jpeg")
		if !errors.Is(err, boom) {
			t.Errorf("Put with a failing reader = %v, want it to wrap the reader's error", err)
		}
		if _, err := s.Stat(ctx, "img/new.jpg"); !blob.IsNotFound(err) {
			t.Errorf("a failed Put left a blob: %v", err)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Readers racing a writer see one whole blob or the other, never a mix.
func TestPutIsAtomic(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s blob.Store) {
		a := bytes.Repeat([]byte("a"), 200_000)
		b := bytes.Repeat([]byte("b"), 200_000)
		put(t, s, "race.bin", "", a)
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range 10 {
				put(t, s, "race.bin", "", [][]byte{a, b}[i%2])
			}
		})
		for range 10 {
			got, _ := get(t, s, "race.bin")
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				t.Fatalf("read a torn blob of %d bytes", len(got))
			}
		}
		wg.Wait()
	})
}

// The S3 store speaks the real protocol: what it puts is in the bucket under
// the prefix, with its content type, as any other S3 client sees it.
func TestS3BucketLayout(t *testing.T) {
	t.Parallel()
	srv, backend := s3Server(t, "bucket-one")
	u, _ := url.Parse("s3://bucket-one/tenant/?endpoint=" + url.QueryEscape(srv.URL) + "&path_style=true")
	cfg, err := blob.ParseS3URL(u, awsEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "img/x.jpg", "image/jpeg", []byte("jpeg bytes"))
	obj, err := backend.HeadObject("bucket-one", "tenant/img/x.jpg")
	if err != nil {
		t.Fatalf("object not at prefix+key in the bucket: %v", err)
	}
	if obj.Size != 10 || obj.Metadata["Content-Type"] != "image/jpeg" {
		t.Errorf("stored object = size %d, metadata %v", obj.Size, obj.Metadata)
	}

	// A missing bucket fails at start-up, not at the first upload.
	cfg.Bucket = "nope"
	if _, err := blob.NewS3(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("NewS3 with a missing bucket = %v", err)
	}
}

// An S3 server that goes away is an outage (503), not a crash or a 404.
func TestS3Unavailable(t *testing.T) {
	t.Parallel()
	srv, _ := s3Server(t, "bucket-two")
	s, err := blob.Open(t.Context(), "s3://bucket-two?endpoint="+url.QueryEscape(srv.URL)+"&path_style=true", awsEnv)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k.txt", "text/plain", []byte("x"))
	srv.Close()
	ctx := t.Context()
	if _, _, err := s.Get(ctx, "k.txt"); ladle.ErrorCode(err) != blob.CodeUnavailable {
		t.Errorf("Get with the server gone = %v, want %s", err, blob.CodeUnavailable)
	}
	if err := s.Put(ctx, "k.txt", strings.NewReader("y"), 1, "text/plain"); ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Errorf("Put with the server gone = %v, want unavailable", err)
	}
	var ne net.Error
	if _, err := s.Stat(ctx, "k.txt"); !errors.As(err, &ne) && !strings.Contains(err.Error(), "connect") {
		t.Errorf("the cause should stay in the chain for logs: %v", err)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, u := range []string{"file://" + dir + "/a", dir + "/b", "file:" + dir + "/c"} {
		s, err := blob.Open(context.Background(), u, awsEnv)
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		if _, ok := s.(*blob.Local); !ok {
			t.Errorf("Open(%s) = %T, want *blob.Local", u, s)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "c")); err != nil || !fi.IsDir() {
		t.Errorf("Open(file:…/c) did not create the folder: %v", err)
	}

	u, _ := url.Parse("s3://photos/ladle?endpoint=http://127.0.0.1:9000&path_style=true")
	cfg, err := blob.ParseS3URL(u, env(map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "tok", "AWS_DEFAULT_REGION": "eu-west-1"}))
	if err != nil {
		t.Fatal(err)
	}
	want := blob.S3Config{Endpoint: "127.0.0.1:9000", Insecure: true, Bucket: "photos", Prefix: "ladle/", Region: "eu-west-1",
		PathStyle: true, AccessKeyID: "id", SecretAccessKey: "secret", SessionToken: "tok"}
	if cfg != want {
		t.Errorf("ParseS3URL = %+v\nwant %+v", cfg, want)
	}
	u, _ = url.Parse("s3://photos?region=us-west-2")
	cfg, _ = blob.ParseS3URL(u, env(map[string]string{"AWS_REGION": "eu-west-1"}))
	if cfg.Endpoint != "s3.amazonaws.com" || cfg.Insecure || cfg.Region != "us-west-2" || cfg.PathStyle {
		t.Errorf("defaults = %+v", cfg)
	}
	for _, bad := range []string{"", "ftp://x", "s3://?endpoint=x", "s3://b?secret=x", "s3://b?path_style=maybe"} {
		if _, err := blob.Open(context.Background(), bad, awsEnv); err == nil {
			t.Errorf("Open(%q) should fail", bad)
		}
	}
}
