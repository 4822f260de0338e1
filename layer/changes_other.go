//go:build !linux

package layer

import "errors"

// Changes lists the changes an overlay upperdir holds. It needs Linux.
func Changes(upper string, below func(name string) (exists bool, err error), userXattr bool) ([]Entry, error) {
	return nil, errors.ErrUnsupported
}
