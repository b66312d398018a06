// Package objstore is the bucket every service writes run artefacts and
// reports to, through cloud.google.com/go/storage. Locally the client talks to
// the GCS emulator (STORAGE_EMULATOR_HOST, read by the client library).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// ErrNotExist is returned for a missing object.
var ErrNotExist = errors.New("object does not exist")

// Store is one bucket.
type Store struct {
	client *storage.Client
	bucket string
}

// New wraps client and bucket. The caller owns the client.
func New(client *storage.Client, bucket string) *Store { return &Store{client: client, bucket: bucket} }

// Connect opens a client (honouring STORAGE_EMULATOR_HOST) for bucket.
func Connect(ctx context.Context, bucket string) (*Store, func() error, error) {
	c, err := storage.NewClient(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("objstore: %w", err)
	}
	return New(c, bucket), c.Close, nil
}

// Bucket is the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// URI is the gs:// address of an object.
func (s *Store) URI(name string) string { return "gs://" + s.bucket + "/" + name }

// Create returns a writer for name; the object exists, replacing any older
// one of that name, once Close returns nil. Writing the same name again
// overwrites: a redelivered event rewrites its objects rather than adding.
func (s *Store) Create(ctx context.Context, name, contentType string) io.WriteCloser {
	w := s.client.Bucket(s.bucket).Object(name).NewWriter(ctx)
	w.ContentType = contentType
	return w
}

// Put writes data to name.
func (s *Store) Put(ctx context.Context, name, contentType string, data []byte) error {
	w := s.Create(ctx, name, contentType)
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return fmt.Errorf("objstore: write %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("objstore: write %s: %w", name, err)
	}
	return nil
}

// Open reads name.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	r, err := s.client.Bucket(s.bucket).Object(name).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, fmt.Errorf("objstore: %s: %w", name, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: read %s: %w", name, err)
	}
	return r, nil
}

// Get reads all of name.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	r, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Object describes a stored object.
type Object struct {
	Name        string
	Size        int64
	ContentType string
	// Generation changes whenever the object is written again; Updated is
	// when it last was.
	Generation int64
	Updated    time.Time
}

// List returns the objects whose names start with prefix, in name order.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	it := s.client.Bucket(s.bucket).Objects(ctx, &storage.Query{Prefix: prefix})
	var out []Object
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("objstore: list %s: %w", prefix, err)
		}
		out = append(out, Object{Name: a.Name, Size: a.Size, ContentType: a.ContentType, Generation: a.Generation, Updated: a.Updated})
	}
}

// CountingWriter counts the bytes written through it to W: the size of an
// object written with Create.
type CountingWriter struct {
	W io.Writer
	N int64 // bytes written so far
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
