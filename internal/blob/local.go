package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// Local is a Store in a folder of the local file system: the key
// "img/ab.jpg" is the file <root>/img/ab.jpg. Put writes a temporary file
// next to the target, syncs it and renames it into place, so a crash or a
// concurrent Get never sees half a blob.
type Local struct {
	root string
}

// NewLocal returns a Store in the folder root, creating it if needed.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob: folder %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: creating folder: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root returns the folder's absolute path.
func (l *Local) Root() string { return l.root }

func (l *Local) path(key string) string { return filepath.Join(l.root, filepath.FromSlash(key)) }

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	const op = "blob.Local.Put"
	if err := checkKey(op, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	dst := l.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return unavailable(op, key, err)
	}
	// Temporary names start with "." so no valid key can name them.
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return unavailable(op, key, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.CopyN(tmp, r, size)
	if err == io.EOF {
		return sizeMismatch(op, key, size, n)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return unavailable(op, key, err)
		}
		return fmt.Errorf("%s %s: reading: %w", op, key, err)
	}
	if err := tmp.Sync(); err != nil {
		return unavailable(op, key, err)
	}
	if err := tmp.Close(); err != nil {
		return unavailable(op, key, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return unavailable(op, key, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return unavailable(op, key, err)
	}
	done = true
	return nil
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	const op = "blob.Local.Get"
	if err := checkKey(op, key); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, Info{}, l.fsError(op, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, unavailable(op, key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, Info{}, notFound(op, key)
	}
	return f, l.info(key, fi), nil
}

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	const op = "blob.Local.Stat"
	if err := checkKey(op, key); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(l.path(key))
	if err != nil {
		return Info{}, l.fsError(op, key, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, notFound(op, key)
	}
	return l.info(key, fi), nil
}

// Delete implements Store.
func (l *Local) Delete(ctx context.Context, key string) error {
	const op = "blob.Local.Delete"
	if err := checkKey(op, key); err != nil {
		return err
	}
	err := os.Remove(l.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return unavailable(op, key, err)
	}
	return nil
}

func (l *Local) info(key string, fi fs.FileInfo) Info {
	ct := mime.TypeByExtension(path.Ext(key))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return Info{Key: key, Size: fi.Size(), ContentType: ct, ModTime: fi.ModTime().UTC()}
}

func (l *Local) fsError(op, key string, err error) error {
	// ENOTDIR: a prefix of the key is a file ("a" exists, "a/b" asked).
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return notFound(op, key)
	}
	return unavailable(op, key, err)
}
