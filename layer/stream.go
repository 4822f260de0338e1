package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrOrder is returned (wrapped) by PackStream for an entry that does not
// come after the one before it.
var ErrOrder = errors.New("entry out of tar order")

// PackStream is Pack for entries that fill hands to add already in tar
// order: each name after the one before by path components ("a" < "a/b" <
// "a.b"), as a walk of a tree in name order gives them. add takes the same
// name twice in a row as the later entry replacing the earlier one (held
// back until the next name comes); any other disorder fails with ErrOrder.
// It holds one entry at a time: memory does not grow with the number of
// entries, where Pack holds and sorts them all. It returns how many entries
// were packed; with none, the blob is an empty tar the caller may drop.
func PackStream(ctx context.Context, w io.Writer, fill func(add func(Entry) error) error, opts PackOptions) (Packed, int, error) {
	pl, err := startPack(ctx, w, opts)
	if err != nil {
		return Packed{}, 0, err
	}
	var held *Entry
	n := 0
	add := func(e Entry) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pack layer: %w", err)
		}
		if err := checkName(e.Name); err != nil {
			return fmt.Errorf("pack %q: %w", e.Name, err)
		}
		if held != nil {
			switch c := comparePaths(held.Name, e.Name); {
			case c == 0:
				*held = e
				return nil
			case c > 0:
				return fmt.Errorf("pack %q after %q: %w", e.Name, held.Name, ErrOrder)
			}
			if err := pl.p.write(held); err != nil {
				return err
			}
			n++
		}
		held = &e
		return nil
	}
	if err := fill(add); err != nil {
		p, err := pl.abort(err)
		return p, 0, err
	}
	if held != nil {
		if err := pl.p.write(held); err != nil {
			p, err := pl.abort(err)
			return p, 0, err
		}
		n++
	}
	p, err := pl.finish()
	return p, n, err
}
