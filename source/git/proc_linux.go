package git

import (
	"os/exec"
	"syscall"
)

// ownGroup runs git in its own process group, killed whole on cancel (the
// remote helpers and index-pack it starts go with it), and killed if
// builder dies.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
