//go:build !linux

package fileset

import "errors"

// Materialize is Linux-only.
func Materialize(ws []Walked, fsys FS, dir string) error { return errors.ErrUnsupported }

// CopyTree is Linux-only.
func CopyTree(ws []Walked, fsys FS, dir string) error { return errors.ErrUnsupported }
