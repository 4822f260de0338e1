package sandbox

import (
	"runtime"
	"strings"
	"testing"
)

// TestBinfmtMatch: the handler lines Debian's qemu-user-static registers
// match the ELF header of their architecture and no other.
func TestBinfmtMatch(t *testing.T) {
	aarch64 := "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: OPF\noffset 0\n" +
		"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	riscv := "enabled\ninterpreter /usr/libexec/qemu-binfmt/riscv64-binfmt-P\nflags: POCF\noffset 0\n" +
		"magic 7f454c460201010000000000000000000200f300\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	disabled := strings.Replace(aarch64, "enabled", "disabled", 1)
	cases := []struct {
		name, text, arch string
		want             bool
	}{
		{"aarch64", aarch64, "arm64", true},
		{"aarch64", aarch64, "amd64", false},
		{"aarch64", aarch64, "riscv64", false},
		{"riscv64", riscv, "riscv64", true},
		{"riscv64", riscv, "arm64", false},
		{"disabled", disabled, "arm64", true}, // CanRun tells it apart
		{"python", "enabled\ninterpreter /usr/bin/python3\nflags: \nextension .py\n", "arm64", false},
	}
	for _, c := range cases {
		e, err := parseBinfmt(c.name, c.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.matches(elfArches[c.arch].elfHeader()); got != c.want {
			t.Errorf("%s matches %s: %v, want %v", c.name, c.arch, got, c.want)
		}
	}
	if _, err := parseBinfmt("bad", "enabled\nmagic zz\n"); err == nil {
		t.Error("a bad magic parsed")
	}
}

// TestCanRunNative: the host's own architecture needs no handler, an
// unknown one is refused by name.
func TestCanRunNative(t *testing.T) {
	e, err := CanRun(runtime.GOARCH)
	if err != nil || !e.Native {
		t.Fatalf("CanRun(%s) = %+v, %v", runtime.GOARCH, e, err)
	}
	if _, err := CanRun("vax"); err == nil || !strings.Contains(err.Error(), "vax") {
		t.Fatalf("CanRun(vax): %v", err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if _, err := CanRun(other); err != nil && !strings.Contains(err.Error(), "fix: ") {
		t.Fatalf("CanRun(%s) fails without the fix: %v", other, err)
	}
}
