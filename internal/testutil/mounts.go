package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Mounts lists the mount points of this process's mount namespace.
func Mounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 5 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// MountsUnder lists the mount points at or under dir.
func MountsUnder(dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	for _, p := range Mounts() {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// PrivateTempDir makes a dir for everything one test binary writes and
// points TMPDIR (so t.TempDir and os.MkdirTemp) at it; done removes it and
// fails (returns a non-zero code) when something is still mounted under it:
// a test, or a peer tool it ran, left a mount on the host. Packages test in
// parallel, so each checks only its own dir. The dir is 0755: tests that
// run builder as another user put their files below it.
func PrivateTempDir(prefix string) (done func(code int) int) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return func(code int) int { return code }
	}
	_ = os.Chmod(dir, 0o755)
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	return func(code int) int {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
		if left := MountsUnder(dir); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d mounts left on the host under %s: %v\n", len(left), dir, left)
			UnmountUnder(dir)
			code = 1
		}
		_ = os.RemoveAll(dir)
		return code
	}
}

// UnmountUnder lazily unmounts every mount point under dir, deepest first
// (what a peer tool left mounted in its storage dir), so dir can be removed.
func UnmountUnder(dir string) {
	points := MountsUnder(dir)
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = exec.Command("umount", "-l", p).Run()
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
