package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle/internal/httpcache"
)

//go:embed static
var staticFS embed.FS

// asset is one embedded static file under its fingerprinted name.
type asset struct {
	url         string // /static/app.1a2b3c4d5e.css
	contentType string
	body        []byte
	etag        string
}

// assets maps logical names ("app.css") to fingerprinted files. The hash is
// of the content, so a changed file gets a new URL and every URL can be
// cached forever (Cache-Control: immutable).
type assets struct {
	byName map[string]*asset // logical name → asset
	byFile map[string]*asset // fingerprinted file name → asset
}

func loadAssets() *assets {
	a := &assets{byName: map[string]*asset{}, byFile: map[string]*asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:5])
		ext := path.Ext(name)
		file := strings.TrimSuffix(name, ext) + "." + hash + ext
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		as := &asset{url: "/static/" + file, contentType: ct, body: body, etag: httpcache.ETag(hash)}
		a.byName[name] = as
		a.byFile[file] = as
		return nil
	})
	if err != nil {
		panic("web: reading embedded assets: " + err.Error())
	}
	return a
}

// URL returns the fingerprinted URL of a logical asset name. An unknown name
// is a template bug: it panics so that any test rendering the page finds it.
func (a *assets) URL(name string) string {
	as, ok := a.byName[name]
	if !ok {
		panic("web: unknown asset " + strconv.Quote(name))
	}
	return as.url
}

// serve answers GET /static/{file}. Only fingerprinted names exist: an old
// hash after a deploy is a 404, never the new bytes under an immutable URL.
func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	as, ok := a.byFile[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	httpcache.Serve(w, r, as.etag, httpcache.Immutable, as.contentType, as.body)
}

// buildID identifies this build's templates and assets, for ETags of pages
// whose HTML names fingerprinted assets.
var buildID = func() string {
	h := sha256.New()
	for _, fsys := range []embed.FS{staticFS, templatesFS} {
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fsys.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write([]byte(p))
			h.Write(b)
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}()
