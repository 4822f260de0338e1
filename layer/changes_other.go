//go:build !linux

package layer

import "errors"

// Changes lists the changes an overlay upperdir holds. It needs Linux.
func Changes(upper string, below Below, opts ChangeOptions) ([]Entry, error) {
	return nil, errors.ErrUnsupported
}
