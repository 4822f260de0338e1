package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Foreign architectures for the multi-platform tests and benchmarks: a
// static busybox of the architecture (Debian's busybox-static of it,
// downloaded once by scripts/foreign-busybox.sh with apt's multiarch
// support) run under QEMU user-mode emulation (Debian's qemu-user-static)
// through the kernel's binfmt_misc.

const binfmtDir = "/proc/sys/fs/binfmt_misc"

// qemuNames maps Debian architecture names to QEMU's.
var qemuNames = map[string]string{"arm64": "aarch64", "armhf": "arm", "riscv64": "riscv64", "ppc64el": "ppc64le", "s390x": "s390x"}

var foreign struct {
	sync.Mutex
	paths map[string]string
}

// ErrNoBinfmt: the kernel has no binfmt_misc (or refuses a handler), so
// foreign binaries cannot run here.
var ErrNoBinfmt = errors.New("no binfmt_misc")

// ForeignBusybox returns a static busybox of the Debian architecture arch
// ("arm64") that this host runs, emulated (see Emulate); what Emulate set
// up is undone when t ends. It skips t only when the kernel has no
// binfmt_misc. Root only.
func ForeignBusybox(t testing.TB, arch string) string {
	t.Helper()
	RequiresRoot(t)
	bb, undo, err := Emulate(arch)
	t.Cleanup(undo)
	if errors.Is(err, ErrNoBinfmt) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bb
}

// Emulate returns a static busybox of the Debian architecture arch
// ("arm64") and makes this host run it under QEMU: it mounts binfmt_misc
// and registers QEMU's handler for arch (the line qemu-user-static ships
// in /usr/lib/binfmt.d) when they are missing. undo (never nil) puts the
// host back as it found it. The error wraps ErrNoBinfmt when the kernel
// cannot do it. Root only.
func Emulate(arch string) (busybox string, undo func(), err error) {
	var undos []func()
	undo = func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	q, ok := qemuNames[arch]
	if !ok {
		return "", undo, fmt.Errorf("emulate: unknown architecture %q", arch)
	}
	bb, err := foreignBinary(arch)
	if err != nil {
		return "", undo, err
	}
	conf := "/usr/lib/binfmt.d/qemu-" + q + ".conf"
	if _, err := os.Stat(conf); err != nil {
		return "", undo, fmt.Errorf("qemu-user-static is not installed (make deps installs it): %w", err)
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		if out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", binfmtDir).CombinedOutput(); err != nil {
			return "", undo, fmt.Errorf("%w: this kernel cannot run %s binaries under QEMU (mount: %v: %s)", ErrNoBinfmt, arch, err, out)
		}
		undos = append(undos, func() { _ = exec.Command("umount", binfmtDir).Run() })
	}
	handler := filepath.Join(binfmtDir, "qemu-"+q)
	data, err := os.ReadFile(handler)
	switch {
	case errors.Is(err, os.ErrNotExist):
		line, err := os.ReadFile(conf)
		if err != nil {
			return "", undo, err
		}
		if err := os.WriteFile(filepath.Join(binfmtDir, "register"), line, 0); err != nil {
			return "", undo, fmt.Errorf("%w: cannot register qemu-%s: %v", ErrNoBinfmt, q, err)
		}
		undos = append(undos, func() { _ = os.WriteFile(handler, []byte("-1"), 0) })
	case err != nil:
		return "", undo, err
	case strings.HasPrefix(string(data), "disabled"):
		if err := os.WriteFile(handler, []byte("1"), 0); err != nil {
			return "", undo, err
		}
		undos = append(undos, func() { _ = os.WriteFile(handler, []byte("0"), 0) })
	}
	if out, err := exec.Command(bb, "true").CombinedOutput(); err != nil {
		return "", undo, fmt.Errorf("%s busybox does not run under QEMU: %v: %s", arch, err, out)
	}
	return bb, undo, nil
}

// foreignBinary runs scripts/foreign-busybox.sh once per arch and process.
func foreignBinary(arch string) (string, error) {
	foreign.Lock()
	defer foreign.Unlock()
	if p := foreign.paths[arch]; p != "" {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "foreign-busybox.sh"), arch).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("get the %s busybox: %w", arch, err)
	}
	if foreign.paths == nil {
		foreign.paths = map[string]string{}
	}
	foreign.paths[arch] = strings.TrimSpace(string(out))
	return foreign.paths[arch], nil
}
