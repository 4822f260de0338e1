package testutil

import "syscall"

// registrySysProcAttr kills the registry if the test process dies before its
// cleanup runs (a timeout panic, a SIGKILL).
func registrySysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
