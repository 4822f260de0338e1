package sandbox

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
)

// Architectures other than the host's run through the kernel's binfmt_misc:
// a handler registered with the fix-binary flag (F) has its interpreter
// (QEMU user-mode, e.g. Debian's qemu-user-static) opened at registration,
// so a foreign ELF binary exec'd inside the sandbox runs under it although
// nothing of the host is in the rootfs. CanRun checks that such a handler
// matches the ELF header of the architecture before a foreign RUN starts.

// Emulation is how this host runs Linux binaries of one architecture.
type Emulation struct {
	Arch string // GOARCH name: "arm64", "arm", "riscv64"
	// Native: the kernel runs them directly (no binfmt_misc handler).
	Native bool
	// Handler and Interpreter name the binfmt_misc entry that runs them
	// (empty when Native).
	Handler, Interpreter string
}

// elfArch is the ELF identity of an architecture: what binfmt_misc matches.
type elfArch struct {
	class   byte // 1: 32-bit, 2: 64-bit
	big     bool // big-endian
	machine uint16
	qemu    string // QEMU's name for it (qemu-<name>, binfmt.d/qemu-<name>.conf)
}

// elfArches are the architectures Go and the usual registries name.
var elfArches = map[string]elfArch{
	"amd64":    {2, false, 62, "x86_64"},
	"386":      {1, false, 3, "i386"},
	"arm64":    {2, false, 183, "aarch64"},
	"arm":      {1, false, 40, "arm"},
	"riscv64":  {2, false, 243, "riscv64"},
	"ppc64le":  {2, false, 21, "ppc64le"},
	"s390x":    {2, true, 22, "s390x"},
	"mips64le": {2, false, 8, "mips64el"},
	"loong64":  {2, false, 258, "loongarch64"},
}

// Arches lists the architectures CanRun knows, sorted.
func Arches() []string {
	out := make([]string, 0, len(elfArches))
	for a := range elfArches {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// elfHeader is the start of an executable of a: e_ident and e_type
// (ET_EXEC), e_machine: the bytes binfmt_misc handlers match.
func (a elfArch) elfHeader() []byte {
	h := []byte{0x7f, 'E', 'L', 'F', a.class, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	var order binary.ByteOrder = binary.LittleEndian
	if a.big {
		h[5] = 2
		order = binary.BigEndian
	}
	order.PutUint16(h[16:], 2)
	order.PutUint16(h[18:], a.machine)
	return h
}

// native reports whether the host kernel runs binaries of arch itself:
// its own architecture, and i386 on amd64 (the kernel's IA32 emulation).
func native(arch string) bool {
	return arch == runtime.GOARCH || runtime.GOARCH == "amd64" && arch == "386"
}

// CanRun reports how this host runs Linux binaries of arch (a GOARCH
// name), or an error that says what is missing and the command that
// fixes it.
func CanRun(arch string) (Emulation, error) {
	if native(arch) {
		return Emulation{Arch: arch, Native: true}, nil
	}
	a, ok := elfArches[arch]
	if !ok {
		return Emulation{}, fmt.Errorf("architecture %q is unknown to builder (known: %v)", arch, Arches())
	}
	return canEmulate(arch, a)
}
