//go:build !linux

package client

import "errors"

func flockFile(p string, exclusive, wait, create bool) (unlock func(), ok bool, err error) {
	return nil, false, errors.ErrUnsupported
}
