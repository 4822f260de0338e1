//go:build !linux

package executor

import (
	"errors"
	"io/fs"
	"time"

	"github.com/builderdev/builder/layer"
)

func stampRunTimes(upper string, ents []layer.Entry, since time.Time, newest int64, below func(p string) (fs.FileInfo, error)) error {
	return errors.ErrUnsupported
}

func setTime(upper, name string, t time.Time) error { return errors.ErrUnsupported }
