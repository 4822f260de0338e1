//go:build !linux

package layer

import (
	"errors"
	"io/fs"
	"time"
)

// Changes lists the changes an overlay upperdir holds. It needs Linux.
func Changes(upper string, below Below, opts ChangeOptions) ([]Entry, error) {
	return nil, errors.ErrUnsupported
}

// SameAsBelow needs Linux (it reads owners from the stat).
func SameAsBelow(e Entry, lower fs.FileInfo, low string, clamp *time.Time) (bool, error) {
	return false, nil
}
