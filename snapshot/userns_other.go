//go:build !linux

package snapshot

// InUserNS is false off Linux.
func InUserNS() bool { return false }

// SingleID is false off Linux.
func SingleID() bool { return false }
