package sandbox

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// binfmtDir is where the kernel lists binfmt_misc handlers (when mounted).
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// binfmtEntry is one handler as /proc/sys/fs/binfmt_misc/<name> shows it.
type binfmtEntry struct {
	name, interpreter, flags string
	enabled                  bool
	offset                   int
	magic, mask              []byte // nil magic: an extension handler
}

// parseBinfmt reads the text of a handler's file.
func parseBinfmt(name, text string) (binfmtEntry, error) {
	e := binfmtEntry{name: name}
	for _, line := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		var err error
		switch k {
		case "enabled":
			e.enabled = true
		case "interpreter":
			e.interpreter = v
		case "flags:":
			e.flags = v
		case "offset":
			e.offset, err = strconv.Atoi(v)
		case "magic":
			e.magic, err = hex.DecodeString(v)
		case "mask":
			e.mask, err = hex.DecodeString(v)
		}
		if err != nil {
			return e, fmt.Errorf("binfmt_misc %s: %s: %w", name, k, err)
		}
	}
	return e, nil
}

// matches reports whether the kernel would hand a file starting with
// header to this handler, when enabled (fs/binfmt_misc.c check_file).
func (e binfmtEntry) matches(header []byte) bool {
	if e.magic == nil || e.offset+len(e.magic) > len(header) {
		return false
	}
	for i, m := range e.magic {
		b := header[e.offset+i]
		if e.mask != nil && i < len(e.mask) {
			b &= e.mask[i]
		}
		if b != m {
			return false
		}
	}
	return true
}

func canEmulate(arch string, a elfArch) (Emulation, error) {
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		return Emulation{}, fmt.Errorf("running linux/%s binaries needs QEMU user-mode emulation through binfmt_misc, which is not mounted here; fix: %s",
			arch, fixCommand(a, true))
	}
	ents, err := os.ReadDir(binfmtDir)
	if err != nil {
		return Emulation{}, fmt.Errorf("list binfmt_misc handlers: %w", err)
	}
	header := a.elfHeader()
	var withoutF, disabled *binfmtEntry
	for _, de := range ents {
		if de.Name() == "register" || de.Name() == "status" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(binfmtDir, de.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // unregistered meanwhile
		}
		if err != nil {
			return Emulation{}, fmt.Errorf("read binfmt_misc handler: %w", err)
		}
		e, err := parseBinfmt(de.Name(), string(data))
		if err != nil || !e.matches(header) {
			continue
		}
		if !e.enabled {
			disabled = &e
			continue
		}
		if !strings.Contains(e.flags, "F") {
			withoutF = &e
			continue
		}
		return Emulation{Arch: arch, Handler: e.name, Interpreter: e.interpreter}, nil
	}
	if withoutF == nil && disabled != nil {
		return Emulation{}, fmt.Errorf("the binfmt_misc handler %s that runs linux/%s binaries is disabled; fix: echo 1 > %s",
			disabled.name, arch, filepath.Join(binfmtDir, disabled.name))
	}
	if withoutF != nil {
		return Emulation{}, fmt.Errorf("the binfmt_misc handler %s for linux/%s lacks the fix-binary flag F (its interpreter %s would have to be inside every image); fix: echo -1 > %s && %s",
			withoutF.name, arch, withoutF.interpreter, filepath.Join(binfmtDir, withoutF.name), fixCommand(a, false))
	}
	return Emulation{}, fmt.Errorf("running linux/%s binaries needs QEMU user-mode emulation, and no binfmt_misc handler is registered for it; fix: %s",
		arch, fixCommand(a, false))
}

// binfmtConf is where Debian's qemu-user-static (and systemd-binfmt) keep
// the registration line of an architecture.
func binfmtConf(a elfArch) string { return "/usr/lib/binfmt.d/qemu-" + a.qemu + ".conf" }

// fixCommand is the one shell command that registers the handler of a:
// from the distribution's binfmt.d file when QEMU is installed, else the
// install (whose scripts register it where systemd runs).
func fixCommand(a elfArch, mount bool) string {
	conf := binfmtConf(a)
	if _, err := os.Stat(conf); err != nil {
		return "apt-get install qemu-user-static (or your distribution's qemu-user-static package; then `builder platforms` shows what is left to do)"
	}
	cmd := fmt.Sprintf("grep -v '^#' %s > %s/register", conf, binfmtDir)
	if mount {
		cmd = fmt.Sprintf("mount -t binfmt_misc binfmt_misc %s && %s", binfmtDir, cmd)
	}
	return cmd
}
