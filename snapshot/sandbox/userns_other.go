//go:build !linux

package sandbox

// EnterUserNS does nothing off Linux.
func EnterUserNS() (int, bool) { return 0, false }

// Reexecuted is false off Linux.
func Reexecuted() bool { return false }

// WillReexec is false off Linux.
func WillReexec() bool { return false }
