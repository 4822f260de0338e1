//go:build !linux

package executor

import (
	"errors"

	"github.com/builderdev/builder/fileset"
)

func filteredCopy(ws []fileset.Walked, fsys fileset.FS, tmp string) (string, error) {
	return "", errors.ErrUnsupported
}
