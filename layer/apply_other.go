//go:build !linux

package layer

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
)

// Apply extracts the (possibly compressed) tar stream r into dir, never
// writing outside dir, and returns the diffID of the uncompressed stream.
// It needs Linux (openat2).
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (digest.Digest, error) {
	return "", errors.ErrUnsupported
}
