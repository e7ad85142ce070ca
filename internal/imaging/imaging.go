// Package imaging turns an uploaded picture into a safe, content-addressed
// image: it checks the type by content (JPEG, PNG, WebP, GIF), the size and
// the dimensions (from the header, before decoding, so a decompression bomb
// is refused without allocating for it), decodes it, turns it upright by
// its EXIF orientation, and re-encodes it as JPEG or PNG — which drops every
// byte of metadata (EXIF with GPS positions, XMP, comments, ICC profiles,
// trailing data). The result is stored under the SHA-256 of its own bytes
// (Save), served with immutable caching (Handler), and linked directly or
// through a CDN (URL).
package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/webp"

	"github.com/ladle-dev/ladle"
)

// Limits bound what Process accepts.
type Limits struct {
	MaxBytes  int64 // the upload as sent
	MaxWidth  int
	MaxHeight int
	MaxPixels int // width × height: bounds decoding memory (4 bytes a pixel)
}

// DefaultLimits: 5 MB, 4096×4096 (at most 64 MiB of pixels to decode).
var DefaultLimits = Limits{MaxBytes: 5 << 20, MaxWidth: 4096, MaxHeight: 4096, MaxPixels: 4096 * 4096}

// Error codes of this package (all KindInvalid, except image_too_large,
// which is KindTooLarge: 413).
const (
	CodeTooLarge    = "image_too_large"
	CodeUnsupported = "image_unsupported"
	CodeDimensions  = "image_dimensions"
	CodeCorrupt     = "image_corrupt"
)

// Image is a processed image, ready to store.
type Image struct {
	Data        []byte // the re-encoded file
	ContentType string // "image/jpeg" or "image/png"
	Width       int
	Height      int
	// Key is the blob key: "img/" + hex SHA-256 of Data + ".jpg" or ".png".
	Key string
}

// KeyPrefix is where images live in the blob store.
const KeyPrefix = "img/"

// Processor processes uploads. Decoding a large image takes tens of
// megabytes and a core for a while, so at most Concurrency decode at once;
// the others wait (or give up when their context ends).
type Processor struct {
	Limits Limits
	sem    chan struct{}
}

// NewProcessor returns a Processor with the given limits (zero fields take
// DefaultLimits) and concurrency (0: 2).
func NewProcessor(l Limits, concurrency int) *Processor {
	d := DefaultLimits
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.MaxWidth > 0 {
		d.MaxWidth = l.MaxWidth
	}
	if l.MaxHeight > 0 {
		d.MaxHeight = l.MaxHeight
	}
	if l.MaxPixels > 0 {
		d.MaxPixels = l.MaxPixels
	}
	if concurrency <= 0 {
		concurrency = 2
	}
	return &Processor{Limits: d, sem: make(chan struct{}, concurrency)}
}

func invalid(code, msg string) error {
	return &ladle.Error{Kind: ladle.KindInvalid, Code: code, Message: msg, Fields: map[string]string{"image": msg}}
}

// Process reads an upload from r and returns it checked and re-encoded.
//
// Outcomes:
//   - the Image.
//   - image_too_large (KindTooLarge): more than Limits.MaxBytes.
//   - image_unsupported: the content is not JPEG, PNG, WebP or GIF
//     (whatever the file name or declared type said).
//   - image_dimensions: wider, taller or with more pixels than the limits,
//     or empty; found from the header alone.
//   - image_corrupt: the header is fine but the image does not decode.
//   - ctx's error if it ended while waiting for a decoding slot; a read
//     error of r, wrapped.
//
// An animated GIF keeps its first frame.
func (p *Processor) Process(ctx context.Context, r io.Reader) (*Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, p.Limits.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("imaging: reading upload: %w", err)
	}
	if int64(len(data)) > p.Limits.MaxBytes {
		return nil, &ladle.Error{Kind: ladle.KindTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("the image is larger than %d MB", p.Limits.MaxBytes>>20),
			Fields:  map[string]string{"image": "is too large"},
			Extra:   map[string]any{"max_bytes": p.Limits.MaxBytes}}
	}

	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	sniffed := http.DetectContentType(data)
	switch sniffed {
	case "image/jpeg":
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	case "image/png":
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case "image/gif":
		decodeConfig, decode = gif.DecodeConfig, gif.Decode
	case "image/webp":
		decodeConfig, decode = webp.DecodeConfig, webp.Decode
	default:
		return nil, invalid(CodeUnsupported, "the file is not a JPEG, PNG, WebP or GIF image")
	}

	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, invalid(CodeCorrupt, "the image could not be read")
	}
	l := p.Limits
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > l.MaxWidth || cfg.Height > l.MaxHeight ||
		int64(cfg.Width)*int64(cfg.Height) > int64(l.MaxPixels) {
		return nil, invalid(CodeDimensions, fmt.Sprintf("the image is %d×%d; at most %d×%d is accepted",
			cfg.Width, cfg.Height, l.MaxWidth, l.MaxHeight))
	}

	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, invalid(CodeCorrupt, "the image could not be decoded")
	}
	if sniffed == "image/jpeg" {
		img = orient(img, jpegOrientation(data))
	}

	// JPEG stays JPEG; an opaque WebP (a photo, almost always lossy) becomes
	// JPEG; everything else — PNG, GIF, WebP with transparency — becomes PNG,
	// which keeps transparency and sharp edges.
	var out bytes.Buffer
	ct, ext := "image/png", ".png"
	if sniffed == "image/jpeg" || sniffed == "image/webp" && isOpaque(img) {
		ct, ext = "image/jpeg", ".jpg"
		err = jpeg.Encode(&out, img, &jpeg.Options{Quality: 85})
	} else {
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&out, img)
	}
	if err != nil {
		return nil, fmt.Errorf("imaging: encoding: %w", err)
	}
	sum := sha256.Sum256(out.Bytes())
	b := img.Bounds()
	return &Image{Data: out.Bytes(), ContentType: ct, Width: b.Dx(), Height: b.Dy(),
		Key: KeyPrefix + hex.EncodeToString(sum[:]) + ext}, nil
}

func isOpaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// IsImageError reports whether err is one of Process's verdicts on the
// upload (as opposed to an I/O failure).
func IsImageError(err error) bool {
	var e *ladle.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeTooLarge, CodeUnsupported, CodeDimensions, CodeCorrupt:
		return true
	}
	return false
}
