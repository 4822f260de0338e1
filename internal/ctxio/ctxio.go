// Package ctxio holds the io pieces of long copies: stopping them when
// their context is done, and running their two sides on two cores.
package ctxio

import (
	"context"
	"io"
)

// Reader reads from r until ctx is done, then fails every read with
// ctx.Err(): io.Copy of a big blob stops soon after a cancel.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
