package predictor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/model"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// ArtifactFile is the artifact's file name in the folder AIP_STORAGE_URI
// names (the trainer writes models/<version>/model.json).
const ArtifactFile = "model.json"

// ErrInvalidArtifact wraps an artifact that was read but is not a model
// this build can serve.
var ErrInvalidArtifact = errors.New("invalid model artifact")

// ParseStorageURI splits a gs:// URI into bucket and object name (or folder
// prefix, without a trailing slash).
func ParseStorageURI(uri string) (bucket, name string, err error) {
	rest, ok := strings.CutPrefix(uri, "gs://")
	if !ok {
		return "", "", fmt.Errorf("storage URI %q: want gs://bucket/folder", uri)
	}
	bucket, name, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("storage URI %q names no bucket", uri)
	}
	return bucket, strings.TrimSuffix(name, "/"), nil
}

// ArtifactObject is the artifact's object name for a storage URI naming
// either the model folder or the model.json in it.
func ArtifactObject(name string) string {
	if name == ArtifactFile || strings.HasSuffix(name, "/"+ArtifactFile) {
		return name
	}
	if name == "" {
		return ArtifactFile
	}
	return name + "/" + ArtifactFile
}

// FolderURI is the gs:// folder holding an artifact object: what Vertex AI
// takes as a model's artifact URI and hands the container as
// AIP_STORAGE_URI.
func FolderURI(bucket, artifactName string) string {
	dir := artifactName
	if i := strings.LastIndex(dir, "/"); i >= 0 {
		dir = dir[:i]
	} else {
		dir = ""
	}
	return "gs://" + bucket + "/" + dir
}

// Load reads and validates the artifact at uri (gs://bucket/folder, or the
// model.json itself) from store, which must be that bucket. A missing object
// wraps objstore.ErrNotExist, an undecodable one ErrInvalidArtifact.
func Load(ctx context.Context, store *objstore.Store, uri string) (*model.Model, error) {
	bucket, name, err := ParseStorageURI(uri)
	if err != nil {
		return nil, err
	}
	if bucket != store.Bucket() {
		return nil, fmt.Errorf("storage URI %q is not in bucket %q", uri, store.Bucket())
	}
	return LoadObject(ctx, store, ArtifactObject(name))
}

// LoadObject reads and validates the artifact object name from store.
func LoadObject(ctx context.Context, store *objstore.Store, name string) (*model.Model, error) {
	data, err := store.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("model artifact %s: %w", store.URI(name), err)
	}
	m, err := model.Load(data)
	if err != nil {
		return nil, fmt.Errorf("model artifact %s: %w: %w", store.URI(name), ErrInvalidArtifact, err)
	}
	return m, nil
}
