package client

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// flockFile takes a flock on the file or dir p (created as a file when
// missing and create is set). With wait unset it reports ok false, rather
// than waiting, when another open file holds a conflicting lock.
func flockFile(p string, exclusive, wait, create bool) (unlock func(), ok bool, err error) {
	var f *os.File
	if create {
		f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	} else {
		f, err = os.Open(p)
	}
	if err != nil {
		return nil, false, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, false, nil
	}
	f.Close()
	return nil, false, err
}
