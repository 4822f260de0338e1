package layer

import (
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
)

// newXzReader decompresses xz in-process (github.com/ulikunitz/xz), so the
// static binary needs no xz(1) on the host.
func newXzReader(r io.Reader) (io.ReadCloser, error) {
	zr, err := xz.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("open xz stream: %w", err)
	}
	return io.NopCloser(zr), nil
}
