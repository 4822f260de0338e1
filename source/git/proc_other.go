//go:build !linux

package git

import "os/exec"

// ownGroup: elsewhere CommandContext kills git alone.
func ownGroup(*exec.Cmd) {}
