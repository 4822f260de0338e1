// Package fsmode converts between Go's fs.FileMode and Unix mode bits.
package fsmode

import "io/fs"

// ToUnix is the permission bits of m with setuid, setgid and sticky as
// Unix has them (0o7777 at most; the file type is left out).
func ToUnix(m fs.FileMode) uint32 {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return n
}

// FromUnix is the fs.FileMode of Unix permission bits (0o7777: setuid,
// setgid, sticky and rwx; other bits are ignored).
func FromUnix(n uint32) fs.FileMode {
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
