package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says where an S3-compatible bucket is.
type S3Config struct {
	// Endpoint is host[:port] of the S3 API ("s3.amazonaws.com",
	// "127.0.0.1:9000", "<account>.r2.cloudflarestorage.com").
	Endpoint string
	// Insecure talks plain HTTP instead of HTTPS (a local MinIO, tests).
	Insecure bool
	Bucket   string
	// Prefix is prepended to every key ("ladle/"), to share a bucket.
	Prefix string
	// Region is the bucket's region; empty lets the client ask the server.
	Region string
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key; most self-hosted servers need it.
	PathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken sign requests; all
	// empty sends anonymous requests (a public bucket, read only).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Transport, if set, carries the HTTP requests (tests, proxies).
	Transport http.RoundTripper
}

// S3 is a Store in an S3-compatible bucket, spoken to with minio-go (which
// signs with AWS Signature V4 and so works with any S3-compatible server).
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
}

// NewS3 connects to the bucket and checks that it exists (so a typo in the
// configuration fails at start-up, not at the first upload).
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("blob: S3 needs an endpoint and a bucket")
	}
	if cfg.Prefix != "" && !ValidKey(cfg.Prefix+"x") {
		return nil, fmt.Errorf("blob: S3 prefix %q is not a valid key prefix", cfg.Prefix)
	}
	var creds *credentials.Credentials
	if cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	} else {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
		// A request path waits on these calls: a few quick retries, not
		// minio-go's default of ten.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 client: %w", err)
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob: checking bucket %q at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("blob: bucket %q does not exist at %s", cfg.Bucket, cfg.Endpoint)
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

// Put implements Store. minio-go sends a blob of known size up to its part
// size as one PUT, which S3 applies atomically.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	const op = "blob.S3.Put"
	if err := checkKey(op, key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	cr := &countingReader{r: r}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, cr, size, minio.PutObjectOptions{ContentType: contentType})
	switch {
	case err == nil:
		return nil
	case cr.readErr != nil && cr.readErr != io.EOF:
		return fmt.Errorf("%s %s: reading: %w", op, key, cr.readErr)
	case cr.readErr == io.EOF && cr.n < size:
		return sizeMismatch(op, key, size, cr.n)
	case ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", op, key, ctx.Err())
	}
	return unavailable(op, key, err)
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	const op = "blob.S3.Get"
	if err := checkKey(op, key); err != nil {
		return nil, Info{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, s.error(op, key, err)
	}
	// GetObject is lazy: Stat sends the request and reports a missing key.
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, Info{}, s.error(op, key, err)
	}
	return obj, s.info(key, oi), nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	const op = "blob.S3.Stat"
	if err := checkKey(op, key); err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.error(op, key, err)
	}
	return s.info(key, oi), nil
}

// Delete implements Store. S3 answers a delete of a missing key with
// success, which is the contract.
func (s *S3) Delete(ctx context.Context, key string) error {
	const op = "blob.S3.Delete"
	if err := checkKey(op, key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		if e := s.error(op, key, err); IsNotFound(e) {
			return nil
		}
		return unavailable(op, key, err)
	}
	return nil
}

func (s *S3) info(key string, oi minio.ObjectInfo) Info {
	return Info{Key: key, Size: oi.Size, ContentType: oi.ContentType, ModTime: oi.LastModified.UTC()}
}

func (s *S3) error(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket" {
		return notFound(op, key)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return unavailable(op, key, err)
}

// countingReader remembers how much was read and how reading ended, so Put
// can tell a short body from an outage.
type countingReader struct {
	r       io.Reader
	n       int64
	readErr error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.readErr = err
	}
	return n, err
}
