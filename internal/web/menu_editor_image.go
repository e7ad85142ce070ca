package web

import (
	"errors"
	"net/http"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/imaging"
)

// ImageStore is where uploaded item photos go (internal/blob).
type ImageStore = blob.Store

// images checks and re-encodes uploads. Decoding is CPU- and memory-heavy,
// so one processor per process bounds how many run at once.
var images = imaging.NewProcessor(imaging.DefaultLimits, 2)

// maxUploadBody bounds the whole multipart request: the image limit plus
// room for the form's other parts and the multipart framing.
const maxUploadBody = 5<<20 + 64<<10

// handleItemImage sets or removes an item's photo. An upload (multipart
// field "image") is checked by content, bounded in bytes and pixels,
// re-encoded without metadata and stored under its content hash (see
// internal/imaging); the item then points at that key. action=remove
// clears the photo. The old file stays in storage: keys are shared by
// content, so another item may use it.
func (s *server) handleItemImage(w http.ResponseWriter, r *http.Request, st *staffView) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.canEditMenu(w, r, st) {
		return
	}
	rid := st.Restaurant.ID
	ctx := r.Context()

	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.menuFail(w, r, st, &ladle.Error{Kind: ladle.KindTooLarge, Code: imaging.CodeTooLarge,
				Message: "the image is larger than 5 MB"})
			return
		}
		if r.PostFormValue("action") != "remove" {
			s.menuFail(w, r, st, invalidField("image", "could not be read: choose a JPEG, PNG, WebP or GIF file"))
			return
		}
	}
	defer func() {
		if r.MultipartForm != nil {
			_ = r.MultipartForm.RemoveAll()
		}
	}()

	// Only the image column is written, and only if the item is still at
	// the version the page showed: an upload never writes back fields from
	// an older read, and a removal never undoes a newer upload.
	version, err := formVersion(r.PostForm)
	if err != nil {
		s.menuFail(w, r, st, err)
		return
	}
	key := ""
	if r.PostFormValue("action") != "remove" {
		if s.Images == nil {
			s.errorPage(w, r, http.StatusServiceUnavailable, "Uploads are off",
				"Image uploads are not configured on this server.")
			return
		}
		f, _, err := r.FormFile("image")
		if err != nil {
			s.menuFail(w, r, st, invalidField("image", "is required: choose a file to upload"))
			return
		}
		defer f.Close()
		img, err := images.Process(ctx, f)
		if err != nil {
			if imaging.IsImageError(err) {
				s.menuFail(w, r, st, err)
			} else {
				s.fail(w, r, err)
			}
			return
		}
		if err := imaging.Save(ctx, s.Images, img); err != nil {
			s.fail(w, r, err)
			return
		}
		key = img.Key
	}
	if _, err := s.Store.SetItemImage(ctx, rid, id, version, key); err != nil {
		s.menuFail(w, r, st, err)
		return
	}
	s.menuChanged(ctx, rid)
	http.Redirect(w, r, withSaved(itemURL(rid, id)), http.StatusSeeOther)
}
