package imaging_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/imaging"
)

// halves is a w×h picture, left half red, right half blue.
func halves(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withExif inserts an APP1 Exif segment holding the Orientation tag and a
// camera-owner string right after the JPEG's SOI marker, as a phone would.
func withExif(jpg []byte, orientation uint16, secret string) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00*")
	binary.Write(&tiff, binary.BigEndian, uint32(8)) // IFD0 at 8
	binary.Write(&tiff, binary.BigEndian, uint16(2)) // two entries
	// 0x0112 Orientation, SHORT, count 1, value
	binary.Write(&tiff, binary.BigEndian, []uint16{0x0112, 3})
	binary.Write(&tiff, binary.BigEndian, uint32(1))
	binary.Write(&tiff, binary.BigEndian, []uint16{orientation, 0})
	// 0xA430 CameraOwnerName, ASCII, pointing past the IFD
	binary.Write(&tiff, binary.BigEndian, []uint16{0xA430, 2})
	binary.Write(&tiff, binary.BigEndian, uint32(len(secret)+1))
	binary.Write(&tiff, binary.BigEndian, uint32(8+2+2*12+4))
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	tiff.WriteString(secret + "\x00")
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// withPNGChunk inserts an ancillary chunk after IHDR.
func withPNGChunk(p []byte, typ string, data []byte) []byte {
	chunk := make([]byte, 4, 12+len(data))
	binary.BigEndian.PutUint32(chunk, uint32(len(data)))
	chunk = append(chunk, typ...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	const afterIHDR = 8 + 25
	out := append([]byte{}, p[:afterIHDR]...)
	out = append(out, chunk...)
	return append(out, p[afterIHDR:]...)
}

// withPNGSize rewrites the IHDR dimensions (and its CRC) of a PNG: a header
// that promises far more pixels than the file holds, as a bomb does.
func withPNGSize(p []byte, w, h uint32) []byte {
	out := append([]byte{}, p...)
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}

func process(t *testing.T, data []byte) (*imaging.Image, error) {
	t.Helper()
	return imaging.NewProcessor(imaging.Limits{}, 0).Process(context.Background(), bytes.NewReader(data))
}

func checkKey(t *testing.T, img *imaging.Image, ext string) {
	t.Helper()
	sum := sha256.Sum256(img.Data)
	if want := "img/" + hex.EncodeToString(sum[:]) + ext; img.Key != want {
		t.Errorf("Key = %s, want %s (the hash of the re-encoded bytes)", img.Key, want)
	}
	if !imaging.ValidKey(img.Key) {
		t.Errorf("Key %s is not a ValidKey", img.Key)
	}
}

func TestJPEGIsTurnedUprightAndStripped(t *testing.T) {
	t.Parallel()
	// The sensor's picture is 40 wide, 20 tall; orientation 6 says "turn it
	// 90° clockwise", so the guest must see 20×40 with red on top.
	src := withExif(encodeJPEG(t, halves(40, 20)), 6, "Jane Doe 51.5N 0.12W")
	if !bytes.Contains(src, []byte("Jane Doe")) {
		t.Fatal("test input lacks its metadata")
	}
	img, err := process(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if img.ContentType != "image/jpeg" || img.Width != 20 || img.Height != 40 {
		t.Fatalf("got %s %d×%d, want image/jpeg 20×40", img.ContentType, img.Width, img.Height)
	}
	checkKey(t, img, ".jpg")
	if bytes.Contains(img.Data, []byte("Jane Doe")) || bytes.Contains(img.Data, []byte("Exif")) {
		t.Error("metadata survived re-encoding")
	}
	out, err := jpeg.Decode(bytes.NewReader(img.Data))
	if err != nil {
		t.Fatal(err)
	}
	top, bottom := out.At(10, 5), out.At(10, 35)
	if r, _, b, _ := top.RGBA(); r>>8 < 200 || b>>8 > 60 {
		t.Errorf("top is %v, want red", top)
	}
	if r, _, b, _ := bottom.RGBA(); b>>8 < 200 || r>>8 > 60 {
		t.Errorf("bottom is %v, want blue", bottom)
	}
}

func TestOrientations(t *testing.T) {
	t.Parallel()
	// A 30×20 image with a black block at the top-left; where it lands says
	// which turn was applied.
	base := image.NewRGBA(image.Rect(0, 0, 30, 20))
	for y := range 20 {
		for x := range 30 {
			base.Set(x, y, color.White)
		}
	}
	for y := range 10 {
		for x := range 10 {
			base.Set(x, y, color.Black) // the top-left block
		}
	}
	want := map[uint16]struct {
		w, h, x, y int // size and where the block's centre ends up
	}{
		1: {30, 20, 5, 5}, 2: {30, 20, 25, 5}, 3: {30, 20, 25, 15}, 4: {30, 20, 5, 15},
		5: {20, 30, 5, 5}, 6: {20, 30, 15, 5}, 7: {20, 30, 15, 25}, 8: {20, 30, 5, 25},
	}
	for o, w := range want {
		img, err := process(t, withExif(encodeJPEG(t, base), o, ""))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jpeg.Decode(bytes.NewReader(img.Data))
		if b := out.Bounds(); b.Dx() != w.w || b.Dy() != w.h {
			t.Errorf("orientation %d: %v, want %d×%d", o, b, w.w, w.h)
			continue
		}
		if y, _, _, _ := color.GrayModel.Convert(out.At(w.x, w.y)).RGBA(); y>>8 > 60 {
			t.Errorf("orientation %d: the top-left block is not at (%d,%d)", o, w.x, w.y)
		}
	}
}

func TestPNGGIFWebP(t *testing.T) {
	t.Parallel()
	t.Run("png keeps its type and loses its text", func(t *testing.T) {
		src := withPNGChunk(encodePNG(t, halves(8, 8)), "tEXt", []byte("Comment\x00secret recipe"))
		img, err := process(t, src)
		if err != nil {
			t.Fatal(err)
		}
		if img.ContentType != "image/png" || bytes.Contains(img.Data, []byte("secret recipe")) {
			t.Errorf("got %s, text kept: %v", img.ContentType, bytes.Contains(img.Data, []byte("secret recipe")))
		}
		checkKey(t, img, ".png")
	})
	t.Run("gif becomes png", func(t *testing.T) {
		pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
		var b bytes.Buffer
		if err := gif.Encode(&b, pal, nil); err != nil {
			t.Fatal(err)
		}
		img, err := process(t, b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if img.ContentType != "image/png" || img.Width != 4 {
			t.Errorf("got %s %d×%d", img.ContentType, img.Width, img.Height)
		}
	})
	for name, c := range map[string]struct{ b64, ct string }{
		"opaque webp becomes jpeg":     {"UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA", "image/jpeg"},
		"transparent webp becomes png": {"UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEAAQAAAP4AAA3AAP7mtQAAAA==", "image/png"},
	} {
		t.Run(name, func(t *testing.T) {
			data, _ := base64.StdEncoding.DecodeString(c.b64)
			img, err := process(t, data)
			if err != nil {
				t.Fatal(err)
			}
			if img.ContentType != c.ct {
				t.Errorf("got %s, want %s", img.ContentType, c.ct)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	okPNG := encodePNG(t, halves(8, 8))
	jpg := encodeJPEG(t, halves(64, 64))
	for name, c := range map[string]struct {
		data []byte
		kind ladle.Kind
		code string
	}{
		"text named .jpg":    {[]byte("hello, I am not an image"), ladle.KindInvalid, imaging.CodeUnsupported},
		"svg":                {[]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), ladle.KindInvalid, imaging.CodeUnsupported},
		"bmp":                {append([]byte("BM"), make([]byte, 64)...), ladle.KindInvalid, imaging.CodeUnsupported},
		"html":               {[]byte("<html><body>hi</body></html>"), ladle.KindInvalid, imaging.CodeUnsupported},
		"empty":              {nil, ladle.KindInvalid, imaging.CodeUnsupported},
		"over 5 MB":          {append(okPNG, make([]byte, 5<<20)...), ladle.KindTooLarge, imaging.CodeTooLarge},
		"too wide":           {encodePNG(t, image.NewGray(image.Rect(0, 0, 4097, 1))), ladle.KindInvalid, imaging.CodeDimensions},
		"decompression bomb": {withPNGSize(okPNG, 60000, 60000), ladle.KindInvalid, imaging.CodeDimensions},
		"zero size":          {withPNGSize(okPNG, 0, 10), ladle.KindInvalid, imaging.CodeCorrupt},
		"truncated jpeg":     {jpg[:len(jpg)/2], ladle.KindInvalid, imaging.CodeCorrupt},
		"png header only":    {okPNG[:40], ladle.KindInvalid, imaging.CodeCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := process(t, c.data)
			if ladle.ErrorKind(err) != c.kind || ladle.ErrorCode(err) != c.code {
				t.Fatalf("Process = %v, want kind %d code %s", err, c.kind, c.code)
			}
			if !imaging.IsImageError(err) {
				t.Error("IsImageError = false")
			}
		})
	}
	// The pixel budget is its own limit: 3000×3000 is within 4096 each way
	// but over a budget of 4M pixels.
	p := imaging.NewProcessor(imaging.Limits{MaxPixels: 4_000_000}, 1)
	_, err := p.Process(context.Background(), bytes.NewReader(withPNGSize(okPNG, 3000, 3000)))
	if ladle.ErrorCode(err) != imaging.CodeDimensions {
		t.Errorf("over the pixel budget = %v", err)
	}
}

func TestSaveAndServe(t *testing.T) {
	t.Parallel()
	store, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := process(t, encodeJPEG(t, halves(16, 16)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // the second Save finds it there
		if err := imaging.Save(ctx, store, img); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := store.Stat(ctx, img.Key); err != nil || info.Size != int64(len(img.Data)) {
		t.Fatalf("stored %+v, %v", info, err)
	}
	if err := store.Put(ctx, "private/report.csv", strings.NewReader("a,b"), 3, "text/csv"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(imaging.Handler(store, nil))
	defer srv.Close()
	url := srv.URL + imaging.URL("", img.Key)
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(body, img.Data) {
		t.Fatalf("GET %s = %d, %d bytes", url, res.StatusCode, len(body))
	}
	for k, v := range map[string]string{"Content-Type": "image/jpeg", "Cache-Control": "public, max-age=31536000, immutable",
		"X-Content-Type-Options": "nosniff"} {
		if res.Header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, res.Header.Get(k), v)
		}
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 304 {
		t.Errorf("conditional GET = %v %v, want 304", res.StatusCode, err)
	}
	if res, err := http.Head(url); err != nil || res.StatusCode != 200 || res.ContentLength != int64(len(img.Data)) {
		t.Errorf("HEAD = %v %v", res.StatusCode, err)
	}
	missing := "/media/img/" + strings.Repeat("0", 64) + ".jpg"
	for _, p := range []string{missing, "/media/private/report.csv", "/media/img/../private/report.csv", "/media/"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s = %d %q, want an uncached 404", p, res.StatusCode, res.Header.Get("Cache-Control"))
		}
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	if got := imaging.URL("", "img/a.jpg"); got != "/media/img/a.jpg" {
		t.Errorf("URL without CDN = %s", got)
	}
	if got := imaging.URLFunc("https://cdn.example.com/media/")("img/a.jpg"); got != "https://cdn.example.com/media/img/a.jpg" {
		t.Errorf("URL with CDN = %s", got)
	}
	if got := imaging.URL("https://cdn.example.com", ""); got != "" {
		t.Errorf("URL of no image = %q", got)
	}
}
