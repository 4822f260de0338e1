//go:build !linux

package testutil

import "syscall"

func registrySysProcAttr() *syscall.SysProcAttr { return nil }
