package sandbox

import "golang.org/x/sys/unix"

// sysRule is one entry of a seccomp profile: what the named syscalls get
// (allowed, or an errno) and under which conditions the entry counts.
type sysRule struct {
	names []string
	errno unix.Errno // 0: allow
	args  []argCond  // all must hold
	// The entry counts only on these ABIs, not on those, with all of caps,
	// with none of notCaps, and from kernel minKernel (major, minor) on.
	arches, notArches []string
	caps, notCaps     uint64
	minKernel         [2]int
}

// argCond compares the low 32 bits of argument index with value (after
// and-ing with mask for opMaskedEq).
type argCond struct {
	index int
	op    argOp
	value uint32
	mask  uint32
}

type argOp int

const (
	opEq argOp = iota
	opLt
	opGt
	opMaskedEq
)

func capBit(c int) uint64 { return 1 << c }

// nsFlags are the clone flags that make namespaces (CLONE_NEWNS, NEWCGROUP,
// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET): default.json's 2114060288.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// dockerProfile is Docker's default seccomp profile, transcribed entry by
// entry from github.com/moby/profiles seccomp/default.json (last changed in
// commit 3c28324314729dbade8287e868eef6338c42807a, 2026-05-06). Its default
// action is EPERM (defaultErrnoRet 1). Entries for ABIs the sandbox does not
// admit (ppc64le, s390, s390x, riscv64, x32) are kept for fidelity: they
// never apply. Compared with libseccomp, argument conditions read only the
// low 32 bits of an argument (see argRule).
var dockerProfile = []sysRule{
	{names: []string{
		"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
		"capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
		"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
		"clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
		"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
		"epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
		"epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
		"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
		"fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
		"fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
		"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
		"ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
		"futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
		"getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
		"getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
		"getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
		"get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
		"gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
		"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
		"ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
		"ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
		"landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
		"link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr",
		"_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
		"map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
		"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
		"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
		"mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
		"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
		"nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause",
		"pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
		"pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
		"prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
		"pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
		"recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
		"removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe",
		"rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
		"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
		"rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
		"sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
		"sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
		"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
		"select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
		"sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
		"setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
		"setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
		"setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
		"setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
		"setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
		"signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
		"stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
		"sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
		"timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
		"timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
		"timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
		"ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
		"utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
		"writev",
	}},
	{names: []string{"process_vm_readv", "process_vm_writev", "ptrace"}, minKernel: [2]int{4, 8}},
	// socket: every family but AF_ALG (38) and AF_VSOCK (40).
	{names: []string{"socket"}, args: []argCond{{index: 0, op: opLt, value: 38}}},
	{names: []string{"socket"}, args: []argCond{{index: 0, op: opEq, value: 39}}},
	{names: []string{"socket"}, args: []argCond{{index: 0, op: opGt, value: 40}}},
	// personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query.
	{names: []string{"personality"}, args: []argCond{{index: 0, op: opEq, value: 0}}},
	{names: []string{"personality"}, args: []argCond{{index: 0, op: opEq, value: 8}}},
	{names: []string{"personality"}, args: []argCond{{index: 0, op: opEq, value: 131072}}},
	{names: []string{"personality"}, args: []argCond{{index: 0, op: opEq, value: 131080}}},
	{names: []string{"personality"}, args: []argCond{{index: 0, op: opEq, value: 4294967295}}},
	{names: []string{"sync_file_range2", "swapcontext"}, arches: []string{"ppc64le"}},
	{names: []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
		arches: []string{"arm", "arm64"}},
	{names: []string{"arch_prctl"}, arches: []string{"amd64", "x32"}},
	{names: []string{"modify_ldt"}, arches: []string{"amd64", "x32", "x86"}},
	{names: []string{"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}, arches: []string{"s390", "s390x"}},
	{names: []string{"riscv_flush_icache"}, arches: []string{"riscv64"}},
	{names: []string{"open_by_handle_at"}, caps: capBit(unix.CAP_DAC_READ_SEARCH)},
	{names: []string{
		"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
		"lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
		"mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
		"setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
	}, caps: capBit(unix.CAP_SYS_ADMIN)},
	// clone without namespace flags (s390 passes the flags second).
	{names: []string{"clone"}, args: []argCond{{index: 0, op: opMaskedEq, mask: nsFlags, value: 0}},
		notCaps: capBit(unix.CAP_SYS_ADMIN), notArches: []string{"s390", "s390x"}},
	{names: []string{"clone"}, args: []argCond{{index: 1, op: opMaskedEq, mask: nsFlags, value: 0}},
		notCaps: capBit(unix.CAP_SYS_ADMIN), arches: []string{"s390", "s390x"}},
	// clone3 passes its flags in memory the filter cannot read: ENOSYS
	// makes libc fall back to clone.
	{names: []string{"clone3"}, errno: unix.ENOSYS, notCaps: capBit(unix.CAP_SYS_ADMIN)},
	{names: []string{"reboot"}, caps: capBit(unix.CAP_SYS_BOOT)},
	{names: []string{"chroot"}, caps: capBit(unix.CAP_SYS_CHROOT)},
	{names: []string{"delete_module", "init_module", "finit_module"}, caps: capBit(unix.CAP_SYS_MODULE)},
	{names: []string{"acct"}, caps: capBit(unix.CAP_SYS_PACCT)},
	{names: []string{"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
		caps: capBit(unix.CAP_SYS_PTRACE)},
	{names: []string{"iopl", "ioperm"}, caps: capBit(unix.CAP_SYS_RAWIO)},
	{names: []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}, caps: capBit(unix.CAP_SYS_TIME)},
	{names: []string{"vhangup"}, caps: capBit(unix.CAP_SYS_TTY_CONFIG)},
	{names: []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}, caps: capBit(unix.CAP_SYS_NICE)},
	{names: []string{"syslog"}, caps: capBit(unix.CAP_SYSLOG)},
	{names: []string{"bpf"}, caps: capBit(unix.CAP_BPF)},
	{names: []string{"perf_event_open"}, caps: capBit(unix.CAP_PERFMON)},
}
