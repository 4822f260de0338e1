package sshforward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// agentProcess is an ssh-agent child holding the keys of one id.
type agentProcess struct {
	cmd    *exec.Cmd
	sock   string
	exited chan struct{}
}

// agentStartTimeout bounds the wait for ssh-agent's socket.
const agentStartTimeout = 10 * time.Second

// startAgent starts `ssh-agent -D -a sock` (foreground: it is our child and
// gets SIGKILL when builder dies) and adds keys with ssh-add, which must
// not ask for a passphrase: it runs with no terminal and no askpass.
// The returned process, when not nil, must be stopped even on error.
func startAgent(ctx context.Context, sock string, keys []string) (*agentProcess, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errors.New("key files need ssh-agent and ssh-add (Debian: openssh-client)")
		}
		return nil, fmt.Errorf("start ssh-agent: %w", err)
	}
	ap := &agentProcess{cmd: cmd, sock: sock, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(ap.exited)
	}()
	if err := ap.waitSocket(ctx); err != nil {
		return ap, fmt.Errorf("start ssh-agent: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	add := exec.CommandContext(ctx, "ssh-add", append([]string{"-q"}, keys...)...)
	add.Env = []string{"SSH_AUTH_SOCK=" + sock, "SSH_ASKPASS_REQUIRE=never", "PATH=" + os.Getenv("PATH")}
	add.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no terminal to ask a passphrase on
	if out, err := add.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return ap, fmt.Errorf("ssh-add %s: %s (keys with a passphrase: add them to your agent and use --ssh ID=$SSH_AUTH_SOCK)", strings.Join(keys, " "), msg)
	}
	return ap, nil
}

// waitSocket waits until the agent accepts connections.
func (ap *agentProcess) waitSocket(ctx context.Context) error {
	deadline := time.NewTimer(agentStartTimeout)
	defer deadline.Stop()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if c, err := net.Dial("unix", ap.sock); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ap.exited:
			return errors.New("ssh-agent exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("ssh-agent did not listen in time")
		case <-time.After(delay):
		}
	}
}

// stop kills the agent (by its pid) and waits for it.
func (ap *agentProcess) stop() error {
	select {
	case <-ap.exited:
		return nil
	default:
	}
	if err := ap.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop ssh-agent: %w", err)
	}
	<-ap.exited
	return nil
}
