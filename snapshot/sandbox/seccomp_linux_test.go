package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompData is the kernel's struct seccomp_data, as the filter sees it.
type seccompData struct {
	nr, arch uint32
	args     [6]uint64
}

func (d seccompData) word(t testing.TB, off uint32) uint32 {
	t.Helper()
	switch {
	case off == offNr:
		return d.nr
	case off == offArch:
		return d.arch
	case off >= offArgs && off < offArgs+48 && off%4 == 0:
		a := d.args[(off-offArgs)/8]
		if (off-offArgs)%8 != 0 {
			a >>= 32 // little-endian: the high word second
		}
		return uint32(a)
	}
	t.Fatalf("load of seccomp_data offset %d", off)
	return 0
}

// checkBPF does what the kernel's checks do before accepting a filter:
// known opcodes, jumps forward and inside the program, a return at the end,
// loads of aligned words inside struct seccomp_data.
func checkBPF(t testing.TB, prog []unix.SockFilter) {
	t.Helper()
	if len(prog) == 0 || len(prog) > bpfMaxInsns {
		t.Fatalf("program of %d instructions", len(prog))
	}
	for pc, in := range prog {
		switch in.Code {
		case bpfLdAbs:
			if in.K%4 != 0 || in.K >= 64 {
				t.Fatalf("pc %d: load of offset %d", pc, in.K)
			}
		case bpfAnd, bpfRet:
		case bpfJa:
			if pc+1+int(in.K) >= len(prog) {
				t.Fatalf("pc %d: ja %d out of the program", pc, in.K)
			}
		case bpfJeq, bpfJge, bpfJgt, bpfJset:
			if pc+1+int(max(in.Jt, in.Jf)) >= len(prog) {
				t.Fatalf("pc %d: jump out of the program", pc)
			}
		default:
			t.Fatalf("pc %d: opcode %#x", pc, in.Code)
		}
	}
	if prog[len(prog)-1].Code != bpfRet {
		t.Fatal("program does not end with a return")
	}
}

// evalBPF runs a classic BPF seccomp program on d, as the kernel would.
func evalBPF(t testing.TB, prog []unix.SockFilter, d seccompData) uint32 {
	t.Helper()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		cond := false
		switch in.Code {
		case bpfLdAbs:
			a = d.word(t, in.K)
			continue
		case bpfAnd:
			a &= in.K
			continue
		case bpfRet:
			return in.K
		case bpfJa:
			pc += int(in.K)
			continue
		case bpfJeq:
			cond = a == in.K
		case bpfJge:
			cond = a >= in.K
		case bpfJgt:
			cond = a > in.K
		case bpfJset:
			cond = a&in.K != 0
		default:
			t.Fatalf("pc %d: opcode %#x", pc, in.Code)
		}
		if cond {
			pc += int(in.Jt)
		} else {
			pc += int(in.Jf)
		}
	}
	t.Fatal("fell off the end of the program")
	return 0
}

func verdictName(v uint32) string {
	switch {
	case v == retAllow:
		return "allow"
	case v == retKill:
		return "kill"
	case v&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO:
		return unix.ErrnoName(unix.Errno(v & unix.SECCOMP_RET_DATA))
	}
	return fmt.Sprintf("%#x", v)
}

func mustABIs(t testing.TB, goarch string) []abi {
	t.Helper()
	abis, err := hostABIs(goarch)
	if err != nil {
		t.Fatal(err)
	}
	return abis
}

func mustNr(t testing.TB, a abi, name string) uint32 {
	t.Helper()
	nr, ok := a.lookup(name)
	if !ok {
		t.Fatalf("%s has no syscall %s", a.name, name)
	}
	return nr
}

var newKernel = [2]int{6, 18}

func TestSeccompFilterDocker(t *testing.T) {
	// What Docker's default profile does, with Docker's default
	// capabilities, on the ABIs of amd64 and arm64 hosts.
	type call struct {
		name string
		args []uint64
		want string
	}
	const (
		sigchld       = uint64(unix.SIGCHLD)
		threadFlags   = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM
		addrNoRandom  = 0x0040000
		perLinux32    = 8
		afALG, afNFC  = 38, 39
		afVSOCK, afKC = 40, 41
	)
	denied := []string{
		"keyctl", "add_key", "request_key", "bpf", "init_module", "finit_module", "delete_module",
		"kexec_load", "open_by_handle_at", "mount", "umount2", "unshare", "setns", "pivot_root",
		"swapon", "swapoff", "reboot", "perf_event_open", "userfaultfd", "lookup_dcookie", "quotactl",
		"sethostname", "setdomainname", "syslog", "acct", "settimeofday", "clock_settime", "iopl",
		"ioperm", "kcmp", "process_madvise", "pidfd_getfd", "mbind", "set_mempolicy", "vhangup",
		"fsopen", "fsmount", "open_tree", "move_mount", "fanotify_init",
	}
	common := []call{
		{"read", nil, "allow"}, {"write", nil, "allow"}, {"execve", nil, "allow"}, {"exit_group", nil, "allow"},
		{"openat", nil, "allow"}, {"futex", nil, "allow"}, {"wait4", nil, "allow"}, {"rseq", nil, "allow"},
		{"chroot", nil, "allow"}, // CAP_SYS_CHROOT is a default capability
		{"clone", []uint64{sigchld}, "allow"},
		{"clone", []uint64{threadFlags}, "allow"},
		{"clone", []uint64{1<<32 | sigchld}, "allow"},
		{"clone", []uint64{unix.CLONE_NEWUSER | sigchld}, "EPERM"},
		{"clone", []uint64{unix.CLONE_NEWNS}, "EPERM"},
		{"clone", []uint64{unix.CLONE_NEWNET | threadFlags}, "EPERM"},
		{"clone3", nil, "ENOSYS"},
		{"socket", []uint64{unix.AF_INET}, "allow"},
		{"socket", []uint64{unix.AF_UNIX}, "allow"},
		{"socket", []uint64{afALG}, "EPERM"},
		{"socket", []uint64{afNFC}, "allow"},
		{"socket", []uint64{afVSOCK}, "EPERM"},
		{"socket", []uint64{1<<32 | afVSOCK}, "EPERM"}, // the kernel reads an int
		{"socket", []uint64{afKC}, "allow"},
		{"personality", []uint64{0}, "allow"},
		{"personality", []uint64{perLinux32}, "allow"},
		{"personality", []uint64{0x20000}, "allow"},
		{"personality", []uint64{0x20008}, "allow"},
		{"personality", []uint64{0xffffffff}, "allow"},
		{"personality", []uint64{addrNoRandom}, "EPERM"},
		{"ptrace", nil, "allow"}, // kernel 4.8 or later
		{"process_vm_readv", nil, "allow"},
	}
	for _, name := range denied {
		common = append(common, call{name, nil, "EPERM"})
	}
	tests := []struct {
		goarch string
		abi    string
		calls  []call
	}{
		{"amd64", "amd64", append(slices.Clone(common), []call{
			{"arch_prctl", nil, "allow"}, {"modify_ldt", nil, "allow"}, {"uretprobe", nil, "allow"},
			{"lsm_get_self_attr", nil, "EPERM"}, // needs CAP_SYS_ADMIN
			{"removexattrat", nil, "allow"},     // the newest syscall the profile names
			{"open_tree_attr", nil, "ENOSYS"},   // newer than the profile
		}...)},
		{"amd64", "x86", append(slices.Clone(common), []call{
			{"socketcall", nil, "allow"}, {"chown32", nil, "allow"}, {"mmap2", nil, "allow"},
			{"modify_ldt", nil, "allow"}, {"ipc", nil, "allow"},
		}...)},
		{"arm64", "arm64", slices.Clone(common)},
		{"arm64", "arm", append(slices.Clone(common), []call{
			{"set_tls", nil, "allow"}, {"breakpoint", nil, "allow"}, {"cacheflush", nil, "allow"},
			{"arm_fadvise64_64", nil, "allow"}, {"arm_sync_file_range", nil, "allow"},
		}...)},
	}
	for _, tt := range tests {
		t.Run(tt.abi, func(t *testing.T) {
			abis := mustABIs(t, tt.goarch)
			prog, err := seccompFilter(dockerProfile, abis, defaultCaps, newKernel)
			if err != nil {
				t.Fatal(err)
			}
			checkBPF(t, prog)
			i := slices.IndexFunc(abis, func(a abi) bool { return a.name == tt.abi })
			a := abis[i]
			for _, c := range tt.calls {
				nr, ok := a.lookup(c.name)
				if !ok {
					if c.want != "EPERM" {
						t.Errorf("%s has no syscall %s", a.name, c.name)
					}
					continue // e.g. swapcontext: not a syscall here
				}
				d := seccompData{nr: nr, arch: a.audit}
				copy(d.args[:], c.args)
				if got := verdictName(evalBPF(t, prog, d)); got != c.want {
					t.Errorf("%s%v: %s, want %s", c.name, c.args, got, c.want)
				}
			}
			for _, nr := range []uint32{9999, 0x0fffff} {
				if got := verdictName(evalBPF(t, prog, seccompData{nr: nr, arch: a.audit})); got != "ENOSYS" {
					t.Errorf("syscall %d: %s, want ENOSYS", nr, got)
				}
			}
		})
	}
}

func TestSeccompFilterArchAndX32(t *testing.T) {
	prog, err := seccompFilter(dockerProfile, mustABIs(t, "amd64"), defaultCaps, newKernel)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		d    seccompData
		want string
	}{
		{seccompData{nr: 0, arch: unix.AUDIT_ARCH_AARCH64}, "kill"},
		{seccompData{nr: 0, arch: unix.AUDIT_ARCH_ARM}, "kill"},
		{seccompData{nr: 0x40000000, arch: unix.AUDIT_ARCH_X86_64}, "ENOSYS"}, // x32 read
		{seccompData{nr: 0xffffffff, arch: unix.AUDIT_ARCH_X86_64}, "ENOSYS"},
		{seccompData{nr: 0xffffffff, arch: unix.AUDIT_ARCH_I386}, "ENOSYS"},
	} {
		if got := verdictName(evalBPF(t, prog, tt.d)); got != tt.want {
			t.Errorf("nr %#x arch %#x: %s, want %s", tt.d.nr, tt.d.arch, got, tt.want)
		}
	}
}

func TestSeccompFilterKernelVersion(t *testing.T) {
	a := mustABIs(t, "amd64")
	prog, err := seccompFilter(dockerProfile, a, defaultCaps, [2]int{4, 4})
	if err != nil {
		t.Fatal(err)
	}
	d := seccompData{nr: mustNr(t, a[0], "ptrace"), arch: a[0].audit}
	if got := verdictName(evalBPF(t, prog, d)); got != "EPERM" {
		t.Errorf("ptrace on Linux 4.4: %s, want EPERM", got)
	}
	for _, tt := range []struct {
		release string
		want    [2]int
	}{
		{"6.18.44-fc-v1300", [2]int{6, 18}}, {"4.8.0", [2]int{4, 8}}, {"5.15", [2]int{5, 15}},
		{"3.10.0-1160.el7.x86_64", [2]int{3, 10}}, {"garbage", [2]int{}}, {"6.x", [2]int{}},
	} {
		if got := parseKernelVersion(tt.release); got != tt.want {
			t.Errorf("parseKernelVersion(%q) = %v, want %v", tt.release, got, tt.want)
		}
	}
}

// refVerdict is the profile evaluated directly, without BPF: the rules that
// apply and name nr decide, unconditional ones first.
func refVerdict(profile []sysRule, a abi, nr uint32, args [6]uint64, caps uint64, kernel [2]int) uint32 {
	var last uint32
	var conds []*sysRule
	uncond := uint32(0)
	for i := range profile {
		r := &profile[i]
		if !r.applies(a, caps, kernel) {
			continue
		}
		for _, name := range r.names {
			n, ok := a.lookup(name)
			if !ok {
				continue
			}
			if n > last && n < armPrivateBase {
				last = n
			}
			if n != nr {
				continue
			}
			switch {
			case len(r.args) > 0:
				conds = append(conds, r)
			case r.errno != 0:
				uncond = retErrno(r.errno)
			default:
				uncond = retAllow
			}
		}
	}
	if a.x32 && nr&0x40000000 != 0 {
		return retErrno(unix.ENOSYS)
	}
	if uncond != 0 {
		return uncond
	}
	for _, r := range conds {
		ok := true
		for _, c := range r.args {
			v := uint32(args[c.index])
			switch c.op {
			case opEq:
				ok = ok && v == c.value
			case opLt:
				ok = ok && v < c.value
			case opGt:
				ok = ok && v > c.value
			case opMaskedEq:
				ok = ok && v&c.mask == c.value
			}
		}
		if ok {
			if r.errno != 0 {
				return retErrno(r.errno)
			}
			return retAllow
		}
	}
	if len(conds) == 0 && nr > last {
		return retErrno(unix.ENOSYS)
	}
	return retErrno(unix.EPERM)
}

func TestSeccompFilterEverySyscall(t *testing.T) {
	// Every number of every table (and some past them), with argument
	// values around each constant the profile compares with, under a few
	// capability sets and kernels: the BPF program agrees with refVerdict.
	argSets := [][6]uint64{{}}
	argNames := map[string]bool{} // the syscalls with argument rules
	for _, r := range dockerProfile {
		for _, c := range r.args {
			v := uint64(c.value)
			for _, x := range []uint64{v, v - 1, v + 1, 1<<32 | v, uint64(c.mask), uint64(c.mask) | 0x11} {
				argSets = append(argSets, [6]uint64{x, x})
			}
			for _, n := range r.names {
				argNames[n] = true
			}
		}
	}
	capSets := []uint64{defaultCaps, 0, defaultCaps | capBit(unix.CAP_SYS_ADMIN) | capBit(unix.CAP_SYS_PTRACE), 1<<41 - 1}
	for _, goarch := range []string{"amd64", "386", "arm64", "arm"} {
		abis := mustABIs(t, goarch)
		for _, caps := range capSets {
			for _, kernel := range [][2]int{newKernel, {4, 4}} {
				prog, err := seccompFilter(dockerProfile, abis, caps, kernel)
				if err != nil {
					t.Fatal(err)
				}
				checkBPF(t, prog)
				for _, a := range abis {
					nrs := map[uint32]bool{500: false, 1000: false, 0x3fffffff: false, 0x40000000: false,
						0x4000000f: false, 0x0f0003: false, 0xffffffff: false}
					for _, s := range a.nums {
						nrs[s.nr] = nrs[s.nr] || argNames[s.name]
					}
					for nr, withArgs := range nrs {
						sets := argSets[:1]
						if withArgs {
							sets = argSets
						}
						for _, args := range sets {
							d := seccompData{nr: nr, arch: a.audit, args: args}
							got, want := evalBPF(t, prog, d), refVerdict(dockerProfile, a, nr, args, caps, kernel)
							if got != want {
								t.Fatalf("%s caps %#x kernel %v: nr %d args %x: %s, want %s",
									a.name, caps, kernel, nr, args[:2], verdictName(got), verdictName(want))
							}
						}
					}
				}
			}
		}
	}
}

func TestSeccompProfileNames(t *testing.T) {
	// A name no table knows is a syscall of an ABI the sandbox does not
	// admit, or a typo.
	var tables []abi
	for _, g := range []string{"amd64", "arm64"} {
		tables = append(tables, mustABIs(t, g)...)
	}
	var unknown []string
	for _, r := range dockerProfile {
		for _, name := range r.names {
			if !slices.ContainsFunc(tables, func(a abi) bool { _, ok := a.lookup(name); return ok }) && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
	}
	slices.Sort(unknown)
	want := []string{"riscv_flush_icache", "riscv_hwprobe", "s390_pci_mmio_read", "s390_pci_mmio_write",
		"s390_runtime_instr", "swapcontext"}
	if !slices.Equal(unknown, want) {
		t.Errorf("names no table knows: %q, want %q", unknown, want)
	}
	for _, a := range tables {
		if !slices.IsSortedFunc(a.nums, func(x, y sysnum) int { return strings.Compare(x.name, y.name) }) {
			t.Errorf("table of %s is not sorted", a.name)
		}
	}
	if _, err := hostABIs("riscv64"); err == nil {
		t.Error("hostABIs(riscv64) succeeded, want an error")
	}
}

func TestSeccompFilterSize(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64"} {
		prog, err := seccompFilter(dockerProfile, mustABIs(t, goarch), defaultCaps, newKernel)
		if err != nil {
			t.Fatal(err)
		}
		// Allowed numbers are mostly contiguous: ranges keep the program
		// short (about 3 instructions per range, not 2 per syscall).
		if len(prog) > 600 {
			t.Errorf("%s: %d instructions", goarch, len(prog))
		}
		t.Logf("%s: %d instructions", goarch, len(prog))
	}
}

// buildProbe builds testdata/seccompprobe, static, into dir.
func buildProbe(t *testing.T, dir string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the probe: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(dir, "probe"), "./testdata/seccompprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
}

func TestSeccompKernel(t *testing.T) {
	// The real kernel agrees with the BPF interpreter on the filter the
	// sandbox installs: a static probe makes raw syscalls inside a RUN.
	requireRoot(t)
	abis, err := hostABIs(runtime.GOARCH)
	if err != nil {
		t.Skip(err)
	}
	a := abis[0]
	l := newLayout(t, func(lower string) { buildProbe(t, filepath.Join(lower, "bin")) })
	prog, err := seccompFilter(dockerProfile, abis, defaultCaps, kernelVersion())
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		name string
		args []uint64
		want unix.Errno // what the filter makes of it; 0: allowed (the kernel then says what it says)
	}
	probes := []probe{
		{"getpid", nil, 0},
		{"keyctl", []uint64{0x1234}, unix.EPERM},
		{"add_key", nil, unix.EPERM},
		{"bpf", []uint64{0xffff}, unix.EPERM},
		{"unshare", []uint64{unix.CLONE_NEWUSER}, unix.EPERM},
		{"clone", []uint64{unix.CLONE_NEWUSER | unix.CLONE_FS}, unix.EPERM}, // EINVAL if it got through
		{"clone", []uint64{unix.CLONE_THREAD}, 0},                           // EINVAL from the kernel
		{"clone3", nil, unix.ENOSYS},
		{"socket", []uint64{40, unix.SOCK_STREAM}, unix.EPERM}, // AF_VSOCK
		{"socket", []uint64{38, unix.SOCK_SEQPACKET}, unix.EPERM},
		{"socket", []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, 0},
		{"personality", []uint64{0x0040000}, unix.EPERM},
		{"personality", []uint64{0xffffffff}, 0},
		{"chroot", nil, 0},              // EFAULT from the kernel
		{"ptrace", []uint64{0xffff}, 0}, // EIO or ESRCH
		{"lsm_get_self_attr", nil, unix.EPERM},
		{"open_tree_attr", nil, unix.ENOSYS},
		{"mount", nil, unix.EPERM},
	}
	var args []string
	var kept []probe
	for _, p := range probes {
		nr, ok := a.lookup(p.name)
		if !ok {
			continue
		}
		d := seccompData{nr: nr, arch: a.audit}
		copy(d.args[:], p.args)
		want := "allow"
		if p.want != 0 {
			want = unix.ErrnoName(p.want)
		}
		if got := verdictName(evalBPF(t, prog, d)); got != want {
			t.Errorf("interpreter: %s%v: %s, want %s", p.name, p.args, got, want)
		}
		arg := strconv.FormatUint(uint64(nr), 10)
		for _, v := range p.args {
			arg += "," + strconv.FormatUint(v, 10)
		}
		args = append(args, arg)
		kept = append(kept, p)
	}
	cfg := l.config("")
	cfg.Args = append([]string{"/bin/probe"}, args...)
	out, errOut, err := runOut(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errOut)
	}
	lines := strings.Fields(out)
	if len(lines) != len(kept) {
		t.Fatalf("probe printed %q for %d calls (stderr: %s)", out, len(kept), errOut)
	}
	for i, p := range kept {
		n, _ := strconv.Atoi(lines[i])
		got := unix.Errno(n)
		switch {
		case p.want != 0 && got != p.want:
			t.Errorf("kernel: %s%v: %v (%d), want %v", p.name, p.args, got, n, p.want)
		case p.want == 0 && (got == unix.EPERM && p.name != "getpid" || got == unix.ENOSYS):
			t.Errorf("kernel: %s%v: %v, want it allowed", p.name, p.args, got)
		}
		t.Logf("%s%v: %d %v", p.name, p.args, n, got)
	}
}

func TestSeccompInSandbox(t *testing.T) {
	requireRoot(t)
	l := newLayout(t, func(lower string) {
		for _, a := range []string{"unshare", "chroot", "linux32"} {
			if err := os.Symlink("busybox", filepath.Join(lower, "bin", a)); err != nil {
				t.Fatal(err)
			}
		}
	})
	script := `grep Seccomp: /proc/self/status
unshare -U true 2>&1 || true
chroot / true && echo chroot ok
linux32 true && echo linux32 ok`
	tests := []struct {
		name     string
		insecure bool
		want     []string
	}{
		{"default", false, []string{"Seccomp:\t2", "unshare: unshare(0x10000000): Operation not permitted", "chroot ok", "linux32 ok"}},
		{"insecure", true, []string{"Seccomp:\t0", "chroot ok", "linux32 ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config(script)
			cfg.Insecure = tt.insecure
			out, errOut, err := runOut(t, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nstderr: %s", err, errOut)
			}
			if got := strings.Split(strings.TrimSpace(out), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	// Insecure: every capability, nothing masked, /sys writable.
	cfg := l.config("grep CapEff /proc/self/status; stat -c %t:%T /proc/keys; grep -c ' /sys .*rw,' /proc/mounts")
	cfg.Insecure = true
	out, errOut, err := runOut(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errOut)
	}
	if f := strings.Fields(out); len(f) != 4 || f[1] == dockerCaps || f[2] == "1:3" || f[3] != "1" {
		t.Errorf("insecure: %q: want more than Docker's capabilities, /proc/keys unmasked and /sys rw", out)
	}
	if bytes.Contains([]byte(out), []byte("0000000000000000")) {
		t.Errorf("insecure: no capabilities: %q", out)
	}
}
