//go:build !linux

package cache

import (
	"errors"
	"fmt"
	"os"
)

// contextRoot is Linux-only (openat2 scoped lookups); elsewhere HashSources
// returns errors.ErrUnsupported.
type contextRoot struct{}

func openContextRoot(dir string) (*contextRoot, error) {
	return nil, fmt.Errorf("open context %s: %w", dir, errors.ErrUnsupported)
}

func (r *contextRoot) Close() error { return errors.ErrUnsupported }

func (r *contextRoot) openDir(rel string) (*dirHandle, error) { return nil, errors.ErrUnsupported }

type dirHandle struct{}

func (d *dirHandle) Close() error { return errors.ErrUnsupported }

func (d *dirHandle) lstat(name string, scratch *[]byte) (fileStat, string, error) {
	return fileStat{}, "", errors.ErrUnsupported
}

func (d *dirHandle) open(name string) (*os.File, error) { return nil, errors.ErrUnsupported }

func fstatFile(f *os.File) (fileStat, error) { return fileStat{}, errors.ErrUnsupported }
