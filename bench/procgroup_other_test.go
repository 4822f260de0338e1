//go:build !linux

package bench

import (
	"errors"
	"os/exec"
)

// The benchmarks run on Linux only; these keep the package building (and
// vetted) elsewhere.

// ownGroup leaves cmd in our process group: a cancel kills cmd only.
func ownGroup(cmd *exec.Cmd) {}

// killGroup is not supported.
func killGroup(pgid int) error { return errors.ErrUnsupported }
