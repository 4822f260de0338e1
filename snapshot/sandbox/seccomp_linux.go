package sandbox

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

//go:generate go run gensyscalls.go

// The seccomp filter of a RUN: Docker's default profile (seccomp_profile_linux.go)
// evaluated for the ABIs of this machine, the capabilities the sandbox keeps
// (defaultCaps) and the running kernel, compiled to classic BPF in the shape
//
//	load arch; one "jeq arch / ja block" pair per ABI; kill   (a foreign ABI)
//	block: load nr
//	       [amd64: x32 numbers (bit 30) -> ENOSYS, as a kernel without x32]
//	       per syscall with argument rules: jeq nr -> its rules, then EPERM
//	       per syscall with an errno rule:   jeq nr -> that errno
//	       per range of allowed numbers:     jge lo, jgt hi -> allow
//	       nr above the last syscall the profile names -> ENOSYS (as runc)
//	       EPERM (Docker's defaultErrnoRet)
//
// Only the syscall number and arch are read before an allow, except for
// the few syscalls with argument rules (clone, socket, personality), so the
// kernel's seccomp action cache (Linux 5.11+) proves every other allowed
// syscall constant and skips the filter for it.

// sysnum is one entry of a syscall table (zsyscalls_linux.go).
type sysnum struct {
	name string
	nr   uint32
}

// abi is one syscall ABI the filter admits: the seccomp_data.arch value
// the kernel reports for it and its syscall table.
type abi struct {
	name  string // as in default.json's "arches": amd64, x86, arm64, arm
	audit uint32 // AUDIT_ARCH_*
	nums  []sysnum
	x32   bool // AUDIT_ARCH_X86_64 also carries x32 calls (bit 30 set)
}

// armPrivateBase is where ARM's private syscalls (cacheflush, set_tls, ...)
// start; they do not count as "the last syscall" for the ENOSYS rule.
const armPrivateBase = 0x0f0000

// hostABIs are the ABIs a process may use on this machine: the native one
// and its 32-bit compat ABI, as Docker's archMap (x32 is left out: its calls
// get ENOSYS, as on kernels without it, which is most of them).
func hostABIs(goarch string) ([]abi, error) {
	amd64 := abi{name: "amd64", audit: unix.AUDIT_ARCH_X86_64, nums: syscallsAMD64, x32: true}
	i386 := abi{name: "x86", audit: unix.AUDIT_ARCH_I386, nums: syscalls386}
	arm64 := abi{name: "arm64", audit: unix.AUDIT_ARCH_AARCH64, nums: syscallsARM64}
	arm := abi{name: "arm", audit: unix.AUDIT_ARCH_ARM, nums: syscallsARM}
	switch goarch {
	case "amd64":
		return []abi{amd64, i386}, nil
	case "386":
		return []abi{i386}, nil
	case "arm64":
		return []abi{arm64, arm}, nil
	case "arm":
		return []abi{arm}, nil
	}
	return nil, fmt.Errorf("no seccomp profile for linux/%s (RUN --security=insecure runs without one)", goarch)
}

// lookup returns the number of the syscall name in the ABI.
func (a abi) lookup(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(a.nums, name, func(s sysnum, name string) int { return strings.Compare(s.name, name) })
	if !ok {
		return 0, false
	}
	return a.nums[i].nr, true
}

// applies reports whether the rule is part of the profile for ABI a, the
// capability set caps and the kernel version.
func (r *sysRule) applies(a abi, caps uint64, kernel [2]int) bool {
	switch {
	case len(r.arches) > 0 && !slices.Contains(r.arches, a.name),
		slices.Contains(r.notArches, a.name),
		caps&r.caps != r.caps,
		caps&r.notCaps != 0,
		r.minKernel != [2]int{} && (kernel[0] < r.minKernel[0] || kernel[0] == r.minKernel[0] && kernel[1] < r.minKernel[1]):
		return false
	}
	return true
}

// Classic BPF opcodes and seccomp return values.
const (
	bpfLdAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	bpfJset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfJa    = unix.BPF_JMP | unix.BPF_JA
	bpfAnd   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	bpfRet   = unix.BPF_RET | unix.BPF_K

	// Offsets in struct seccomp_data. Every ABI here is little-endian
	// (their AUDIT_ARCH values say so), so an argument's low 32 bits come first.
	offNr   = 0
	offArch = 4
	offArgs = 16

	retAllow = unix.SECCOMP_RET_ALLOW
	// A foreign ABI kills the process, as libseccomp's default bad-arch
	// action (KILL_PROCESS rather than KILL_THREAD: no half-dead process).
	retKill = unix.SECCOMP_RET_KILL_PROCESS

	bpfMaxInsns = 4096 // BPF_MAXINSNS
)

func retErrno(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e)&unix.SECCOMP_RET_DATA }

type bpfProg []unix.SockFilter

func (p *bpfProg) add(code uint16, jt, jf uint8, k uint32) {
	*p = append(*p, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
}

// seccompFilter compiles profile for the ABIs, the capability set caps
// (rules that need a capability outside it are left out, rules that need
// one to be missing are kept) and the kernel version.
func seccompFilter(profile []sysRule, abis []abi, caps uint64, kernel [2]int) ([]unix.SockFilter, error) {
	var p bpfProg
	p.add(bpfLdAbs, 0, 0, offArch)
	jumps := make([]int, len(abis))
	for i, a := range abis {
		p.add(bpfJeq, 0, 1, a.audit)
		jumps[i] = len(p)
		p.add(bpfJa, 0, 0, 0) // to the ABI's block, set below
	}
	p.add(bpfRet, 0, 0, retKill)
	for i, a := range abis {
		p[jumps[i]].K = uint32(len(p) - jumps[i] - 1)
		if err := p.abiBlock(profile, a, caps, kernel); err != nil {
			return nil, fmt.Errorf("seccomp profile for %s: %w", a.name, err)
		}
	}
	if len(p) > bpfMaxInsns {
		return nil, fmt.Errorf("seccomp filter has %d instructions, more than the kernel's %d", len(p), bpfMaxInsns)
	}
	return p, nil
}

// abiBlock appends the rules of one ABI (the syscall number not yet loaded).
func (p *bpfProg) abiBlock(profile []sysRule, a abi, caps uint64, kernel [2]int) error {
	allowed := map[uint32]bool{}
	errnos := map[uint32]unix.Errno{}
	conds := map[uint32][]*sysRule{}
	var condOrder []uint32
	var last uint32
	for i := range profile {
		r := &profile[i]
		if !r.applies(a, caps, kernel) {
			continue
		}
		for _, name := range r.names {
			nr, ok := a.lookup(name)
			if !ok {
				continue // not a syscall of this ABI
			}
			if nr > last && nr < armPrivateBase {
				last = nr
			}
			switch {
			case len(r.args) > 0:
				if len(conds[nr]) == 0 {
					condOrder = append(condOrder, nr)
				}
				conds[nr] = append(conds[nr], r)
			case r.errno != 0:
				if allowed[nr] || errnos[nr] != 0 && errnos[nr] != r.errno {
					return fmt.Errorf("conflicting rules for %s", name)
				}
				errnos[nr] = r.errno
			default:
				if errnos[nr] != 0 {
					return fmt.Errorf("conflicting rules for %s", name)
				}
				allowed[nr] = true
			}
		}
	}

	p.add(bpfLdAbs, 0, 0, offNr)
	if a.x32 {
		p.add(bpfJset, 0, 1, 0x40000000) // __X32_SYSCALL_BIT; also catches nr -1
		p.add(bpfRet, 0, 0, retErrno(unix.ENOSYS))
	}
	for _, nr := range condOrder {
		if allowed[nr] || errnos[nr] != 0 {
			continue // an unconditional rule decides
		}
		var block bpfProg
		for _, r := range conds[nr] {
			block.argRule(r)
		}
		block.add(bpfRet, 0, 0, retErrno(unix.EPERM))
		if len(block) > 255 {
			return fmt.Errorf("argument rules of syscall %d are too long for one jump", nr)
		}
		p.add(bpfJeq, 0, uint8(len(block)), nr)
		*p = append(*p, block...)
	}
	for _, nr := range sortedKeys(errnos) {
		p.add(bpfJeq, 0, 1, nr)
		p.add(bpfRet, 0, 0, retErrno(errnos[nr]))
	}
	nrs := sortedKeys(allowed)
	for i := 0; i < len(nrs); {
		j := i
		for j+1 < len(nrs) && nrs[j+1] == nrs[j]+1 {
			j++
		}
		if lo, hi := nrs[i], nrs[j]; lo == hi {
			p.add(bpfJeq, 0, 1, lo)
		} else {
			p.add(bpfJge, 0, 2, lo)
			p.add(bpfJgt, 1, 0, hi)
		}
		p.add(bpfRet, 0, 0, retAllow)
		i = j + 1
	}
	// Numbers past the newest syscall the profile knows are syscalls newer
	// than it: ENOSYS lets programs fall back to an older one.
	p.add(bpfJgt, 0, 1, last)
	p.add(bpfRet, 0, 0, retErrno(unix.ENOSYS))
	p.add(bpfRet, 0, 0, retErrno(unix.EPERM))
	return nil
}

// argRule appends the conditions of r (all must hold) and its action; a
// failed condition jumps past the action to whatever follows. Arguments
// are compared on their low 32 bits: each argument the profile tests is an
// int to the kernel (socket's family, personality's persona), or flags
// whose tested bits are all in the low word (clone's).
func (p *bpfProg) argRule(r *sysRule) {
	size := func(c argCond) int {
		if c.op == opMaskedEq {
			return 3
		}
		return 2
	}
	rest := 1 // the return
	for _, c := range r.args {
		rest += size(c)
	}
	for _, c := range r.args {
		rest -= size(c)
		p.add(bpfLdAbs, 0, 0, uint32(offArgs+8*c.index))
		skip := uint8(rest) // to past the return
		switch c.op {
		case opEq:
			p.add(bpfJeq, 0, skip, c.value)
		case opGt:
			p.add(bpfJgt, 0, skip, c.value)
		case opLt:
			p.add(bpfJge, skip, 0, c.value)
		case opMaskedEq:
			p.add(bpfAnd, 0, 0, c.mask)
			p.add(bpfJeq, 0, skip, c.value)
		}
	}
	if r.errno != 0 {
		p.add(bpfRet, 0, 0, retErrno(r.errno))
	} else {
		p.add(bpfRet, 0, 0, retAllow)
	}
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// kernelVersion is the major and minor version of the running kernel
// ({0, 0} when unknown: version-gated rules are then left out).
func kernelVersion() [2]int {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return [2]int{}
	}
	return parseKernelVersion(unix.ByteSliceToString(u.Release[:]))
}

func parseKernelVersion(release string) [2]int {
	major, rest, _ := strings.Cut(release, ".")
	minor := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = rest[:i]
	}
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return [2]int{}
	}
	return [2]int{a, b}
}

// applySeccomp installs Docker's default profile on this thread, the one
// that execs (the filter is per thread and survives exec; the other Go
// threads die at exec). no_new_privs must be set: it is what lets a
// process without CAP_SYS_ADMIN install a filter.
func (c *child) applySeccomp() error {
	if c.spec.Insecure {
		return nil
	}
	abis, err := hostABIs(runtime.GOARCH)
	if err != nil {
		return err
	}
	prog, err := seccompFilter(dockerProfile, abis, defaultCaps, kernelVersion())
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	err = unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
	runtime.KeepAlive(prog)
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("install seccomp filter: %w (kernel without CONFIG_SECCOMP_FILTER?)", err)
	}
	if err != nil {
		return fmt.Errorf("install seccomp filter: %w", err)
	}
	return nil
}
